package e2e

import (
	"net"
	"os/exec"
	"testing"
)

// nodeProc is one greyd process of a cluster test (server or worker node),
// optionally run inside a network namespace. Unlike greyd (main_test.go)
// it takes arbitrary flags, so it can be a joining server or a worker.
type nodeProc struct {
	proc
	Name string
	// NS is the network namespace to run in ("" = the test's own).
	NS   string
	Args []string

	dir string
}

// newNodeProc prepares a process named name (its log is dir/name.log); it is
// killed when the test ends and the tail of its log is printed if the test
// failed.
func newNodeProc(t *testing.T, dir, name, ns string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{Name: name, NS: ns, Args: args, dir: dir}
	p.initProc(t, name, logIn(dir, name), 6000)
	return p
}

// Start starts the process (it must not be running).
func (p *nodeProc) Start() {
	p.t.Helper()
	var cmd *exec.Cmd
	if p.NS != "" {
		// ip netns exec execs greyd in place: the pid is greyd's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", p.NS, greydBin}, p.Args...)...)
	} else {
		cmd = exec.Command(greydBin, p.Args...)
	}
	cmd.Dir = p.dir
	p.run(cmd)
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
