// Command cputime runs a command and writes the CPU seconds it used (user +
// system, from its rusage) to a file, so run.sh can count greyctl's CPU next
// to greyd's as it counts a peer's inserters next to its workers:
//
//	cputime OUTFILE COMMAND [ARGS...]
//
// The command's standard streams are this one's; cputime exits with its
// status.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: cputime OUTFILE COMMAND [ARGS...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintln(os.Stderr, "cputime:", err)
		os.Exit(1)
	}
	st := cmd.ProcessState
	secs := (st.UserTime() + st.SystemTime()).Seconds()
	if werr := os.WriteFile(os.Args[1], []byte(strconv.FormatFloat(secs, 'f', 3, 64)+"\n"), 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, "cputime:", werr)
		os.Exit(1)
	}
	os.Exit(st.ExitCode())
}
