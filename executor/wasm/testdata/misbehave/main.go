// Command misbehave is a test module for the wasm executor: its first
// argument picks a behaviour.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

var sink [][]byte

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "echo":
		_, _ = io.Copy(os.Stdout, os.Stdin)
	case "panic":
		panic("boom")
	case "exit":
		fmt.Fprintln(os.Stderr, "giving up")
		os.Exit(3)
	case "oom":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "alloc": // alloc MiB: hold that much, then succeed
		n, _ := strconv.Atoi(os.Args[2])
		for range n {
			b := make([]byte, 1<<20)
			b[0] = 1
			sink = append(sink, b)
		}
		fmt.Printf("{\"allocated_mib\":%d}\n", n)
	case "loop":
		for {
		}
	case "flood":
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = 'x'
		}
		for {
			_, _ = os.Stdout.Write(buf)
		}
	case "entropy": // what the sandbox gives for time and randomness
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		fmt.Printf("{\"now\":%d,\"elapsed_ns\":%d,\"random\":%q}\n", t0.UnixNano(), time.Since(t0).Nanoseconds(), hex.EncodeToString(b))
	case "files":
		_, err := os.ReadFile("/etc/passwd")
		fmt.Printf("%q\n", fmt.Sprint(err))
	default:
		fmt.Print("plain text, not JSON\n")
	}
}
