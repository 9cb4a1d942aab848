package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one restartable OS process of a test. Its runs share a log file
// (stdout and stderr, with a line per start); it is killed when the test
// ends, and the tail of its log is printed if the test failed.
type proc struct {
	t       *testing.T
	name    string
	logPath string
	logFile *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState
	stderr *bytes.Buffer // stderr of the current run (also in the log file)
	starts int
	// env is added to the process's environment (after cleanEnv).
	env []string
}

// initProc opens the log at logPath and registers the clean-up.
func (p *proc) initProc(t *testing.T, name, logPath string, logTail int) {
	t.Helper()
	p.t, p.name, p.logPath = t, name, logPath
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.logFile = lf
	t.Cleanup(func() {
		if p.Running() {
			p.Kill()
		}
		_ = p.logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (%s):\n%s", name, logPath, tail(b, logTail))
		}
	})
}

// run starts cmd as the process's next run (it must not be running).
func (p *proc) run(cmd *exec.Cmd) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.state == nil {
		p.t.Fatalf("%s is already running", p.name)
	}
	p.starts++
	fmt.Fprintf(p.logFile, "==== %s start %d: %s\n", time.Now().Format(time.RFC3339Nano), p.starts, strings.Join(cmd.Args, " "))
	cmd.Env = append(cleanEnv(), p.env...)
	p.stderr = &bytes.Buffer{}
	cmd.Stdout = p.logFile
	cmd.Stderr = io.MultiWriter(p.logFile, &lockedWriter{mu: &p.mu, w: p.stderr})
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.state = cmd, nil
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(exited)
	}()
}

// Running reports whether the process was started and has not exited.
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && p.state == nil
}

// Exited is closed when the current run ends.
func (p *proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Stderr is what the current (or last) run wrote to stderr.
func (p *proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stderr == nil {
		return ""
	}
	return p.stderr.String()
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *proc) Kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	fmt.Fprintf(p.logFile, "==== %s SIGKILL\n", time.Now().Format(time.RFC3339Nano))
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not die within 10s of SIGKILL", p.name, cmd.Process.Pid)
	}
}

// Signal sends sig to the process.
func (p *proc) Signal(sig os.Signal) {
	p.t.Helper()
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// WaitExit waits up to timeout for the process to exit and returns its exit
// code (-1 when killed by a signal); ok is false on timeout.
func (p *proc) WaitExit(timeout time.Duration) (code int, ok bool) {
	select {
	case <-p.Exited():
	case <-time.After(timeout):
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.ExitCode(), true
}

// Pid is the current process id.
func (p *proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

func (p *proc) exitState() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return "running"
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit code %d", p.state.ExitCode())
}

// logIn is the path of name's log in dir.
func logIn(dir, name string) string { return filepath.Join(dir, name+".log") }
