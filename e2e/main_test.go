// Package e2e holds end-to-end tests that build the real greyd and greyctl
// binaries and drive them as separate processes: crash recovery under load,
// the CLI, graceful shutdown and configuration errors.
//
// The tests are slow and start processes, so they run only when GREY_E2E=1:
//
//	GREY_E2E=1 go test -count=1 ./e2e/
//
// Without it every test skips and nothing is built.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// enabled reports whether GREY_E2E=1.
var enabled = os.Getenv("GREY_E2E") == "1"

// Paths of the binaries built by TestMain.
var (
	greydBin   string
	greyctlBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if !enabled {
		return m.Run()
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "grey-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	greydBin = filepath.Join(dir, "greyd")
	greyctlBin = filepath.Join(dir, "greyctl")
	for bin, pkg := range map[string]string{greydBin: "./cmd/greyd", greyctlBin: "./cmd/greyctl"} {
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", pkg, err, out)
			return 1
		}
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", pkg, time.Since(start).Round(time.Millisecond))
		}
	}
	return m.Run()
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// requireE2E skips t unless GREY_E2E=1.
func requireE2E(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skip("end-to-end test: set GREY_E2E=1 to build greyd/greyctl and run it")
	}
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago (all are held open together so none repeats).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// greyd is one greyd node run as a child process; it can be stopped and
// started again on the same data dir and addresses.
type greyd struct {
	proc

	dir         string // test temp dir: config, logs
	DataDir     string
	ConfigPath  string // "" = no --config
	HTTPAddr    string
	RaftAddr    string
	MetricsAddr string
}

// newGreyd prepares a node with fresh ports and data dir; config, when not
// empty, is written to a file passed with --config. The node is killed when
// the test ends, and its log is printed if the test failed.
func newGreyd(t *testing.T, config string) *greyd {
	t.Helper()
	dir := t.TempDir()
	p := freePorts(t, 3)
	g := &greyd{
		dir:         dir,
		DataDir:     filepath.Join(dir, "data"),
		HTTPAddr:    fmt.Sprintf("127.0.0.1:%d", p[0]),
		RaftAddr:    fmt.Sprintf("127.0.0.1:%d", p[1]),
		MetricsAddr: fmt.Sprintf("127.0.0.1:%d", p[2]),
	}
	if config != "" {
		g.ConfigPath = filepath.Join(dir, "grey.yaml")
		if err := os.WriteFile(g.ConfigPath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.initProc(t, "greyd", logIn(dir, "greyd"), 8000)
	return g
}

// URL is the API's base URL.
func (g *greyd) URL() string { return "http://" + g.HTTPAddr }

// args are greyd's command-line flags.
func (g *greyd) args() []string {
	a := []string{
		"--data-dir", g.DataDir,
		"--http-addr", g.HTTPAddr,
		"--raft-addr", g.RaftAddr,
		"--metrics-addr", g.MetricsAddr,
		"--node-id", "e2e-1",
	}
	if g.ConfigPath != "" {
		a = append(a, "--config", g.ConfigPath)
	}
	return a
}

// Start starts greyd (it must not be running).
func (g *greyd) Start() {
	g.t.Helper()
	g.run(exec.Command(greydBin, g.args()...))
}

// WaitReady polls /readyz until it answers 200 and returns how long that
// took. It fails the test when the process exits or timeout passes.
func (g *greyd) WaitReady(timeout time.Duration) time.Duration {
	g.t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: time.Second}
	deadline := start.Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-g.Exited():
			g.t.Fatalf("greyd exited before it was ready (%s); stderr:\n%s", g.exitState(), tail([]byte(g.Stderr()), 4000))
		default:
		}
		resp, err := hc.Get(g.URL() + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		time.Sleep(25 * time.Millisecond)
	}
	g.t.Fatalf("greyd not ready after %s (last: %s)", timeout, last)
	return 0
}

// lockedWriter serialises writes to w with mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// cleanEnv is the test's environment without the GREY_* variables that
// greyd and greyctl read, so the developer's settings do not leak in.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GREY_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// ctlResult is the outcome of one greyctl run.
type ctlResult struct {
	Code   int
	Stdout string
	Stderr string
}

// greyctl runs greyctl against server with args and returns its output;
// a run that cannot start or outlives timeout fails the test.
func greyctl(t *testing.T, server string, timeout time.Duration, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"--server", server}, args...)
	cmd := exec.CommandContext(ctx, greyctlBin, full...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("greyctl %s: did not finish within %s; stderr:\n%s", strings.Join(args, " "), timeout, stderr.String())
	}
	res := ctlResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("greyctl %s: %v", strings.Join(args, " "), err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "…" + string(b[len(b)-n:])
}
