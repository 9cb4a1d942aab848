package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodeProc is one greyd process of a cluster test (server or worker node),
// optionally run inside a network namespace. Unlike greyd (main_test.go)
// it takes arbitrary flags, so it can be a joining server or a worker.
type nodeProc struct {
	t    *testing.T
	Name string
	// NS is the network namespace to run in ("" = the test's own).
	NS   string
	Args []string

	dir     string
	logPath string
	logFile *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState
	stderr *bytes.Buffer
	starts int
}

// newNodeProc prepares a process named name (its log is dir/name.log); it is
// killed when the test ends and the tail of its log is printed if the test
// failed.
func newNodeProc(t *testing.T, dir, name, ns string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{t: t, Name: name, NS: ns, Args: args, dir: dir, logPath: filepath.Join(dir, name+".log")}
	lf, err := os.Create(p.logPath)
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
			b, _ := os.ReadFile(p.logPath)
			t.Logf("%s log (%s):\n%s", name, p.logPath, tail(b, 6000))
		}
	})
	return p
}

// Start starts the process (it must not be running).
func (p *nodeProc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.state == nil {
		p.t.Fatalf("%s is already running", p.Name)
	}
	p.starts++
	var cmd *exec.Cmd
	if p.NS != "" {
		// ip netns exec execs greyd in place: the pid is greyd's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", p.NS, greydBin}, p.Args...)...)
	} else {
		cmd = exec.Command(greydBin, p.Args...)
	}
	fmt.Fprintf(p.logFile, "==== %s start %d: %s\n", time.Now().Format(time.RFC3339Nano), p.starts, strings.Join(cmd.Args, " "))
	cmd.Dir = p.dir
	cmd.Env = cleanEnv()
	p.stderr = &bytes.Buffer{}
	cmd.Stdout = p.logFile
	cmd.Stderr = io.MultiWriter(p.logFile, &lockedWriter{mu: &p.mu, w: p.stderr})
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.Name, err)
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
func (p *nodeProc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && p.state == nil
}

// Exited is closed when the current run ends.
func (p *nodeProc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *nodeProc) Kill() {
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
		p.t.Errorf("%s (pid %d) did not die within 10s of SIGKILL", p.Name, cmd.Process.Pid)
	}
}

// Stderr is what the current (or last) run wrote to stderr.
func (p *nodeProc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stderr == nil {
		return ""
	}
	return p.stderr.String()
}

// freePortOn returns a TCP port that was free on host a moment ago.
func freePortOn(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
