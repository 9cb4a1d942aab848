package rabbitevents_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/internal/testtls"
)

// rabbitServer is the Debian package's server script, the one
// scripts/services.sh runs.
const rabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// privateBroker is a RabbitMQ node of this test alone (own epmd, ports,
// node name and data directory), started the way scripts/services.sh
// starts the shared one, so that a test may kill -9 it without
// disturbing anyone.
type privateBroker struct {
	t                      testing.TB
	dir, node              string
	port, dist, epmd, mgmt int
	tlsPort                int // amqps:// listener (0: none)
	epmdCmd, srv           *exec.Cmd
	srvDone                chan struct{}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrivateBroker starts a private node; management adds the
// management plugin (HTTP API on b.mgmt). It skips without the real
// service (GREY_TEST_RABBITMQ_URL unset) or the server package.
func startPrivateBroker(t testing.TB, management bool) *privateBroker {
	t.Helper()
	return startPrivateBrokerTLS(t, management, nil)
}

// startPrivateBrokerTLS starts a private node that also listens for
// amqps:// on b.tlsPort with certs' server certificate when certs is not
// nil.
func startPrivateBrokerTLS(t testing.TB, management bool, certs *testtls.Files) *privateBroker {
	t.Helper()
	testenv.ServiceURL(t, "rabbitmq")
	if _, err := os.Stat(rabbitServer); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s: %v", rabbitServer, err)
		}
		t.Skipf("%s is not installed (scripts/services.sh installs it)", rabbitServer)
	}
	epmdBin, err := exec.LookPath("epmd")
	if err != nil {
		m, _ := filepath.Glob("/usr/lib/erlang/erts-*/bin/epmd")
		if len(m) == 0 {
			t.Skip("no epmd")
		}
		epmdBin = m[0]
	}
	dir, err := os.MkdirTemp("", "grey-rabbit-")
	if err != nil {
		t.Fatal(err)
	}
	b := &privateBroker{t: t, dir: dir, node: "greyfault" + randHex(3) + "@localhost",
		port: freePort(t), dist: freePort(t), epmd: freePort(t)}
	for _, d := range []string{"home", "mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\nloopback_users.guest = true\nlog.file.level = info\nlog.console = false\n", b.port)
	if certs != nil {
		b.tlsPort = freePort(t)
		conf += fmt.Sprintf("listeners.ssl.1 = 127.0.0.1:%d\nssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\n"+
			"ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n", b.tlsPort, certs.CA, certs.Cert, certs.Key)
	}
	plugins := "[]."
	if management {
		b.mgmt = freePort(t)
		conf += fmt.Sprintf("management.tcp.port = %d\nmanagement.tcp.ip = 127.0.0.1\n", b.mgmt)
		plugins = "[rabbitmq_management]."
	}
	must(t, os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(conf), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte(plugins), 0o644))
	b.epmdCmd = exec.Command(epmdBin, "-port", strconv.Itoa(b.epmd), "-address", "127.0.0.1")
	b.epmdCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, b.epmdCmd.Start())
	t.Cleanup(b.cleanup)
	b.start()
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// URL is the node's AMQP URL.
func (b *privateBroker) URL() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", b.port)
}

// TLSURL is the node's amqps:// URL (startPrivateBrokerTLS).
func (b *privateBroker) TLSURL() string {
	return fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d/", b.tlsPort)
}

// Env is the environment of the server script and of rabbitmqctl for
// this node.
func (b *privateBroker) Env() []string {
	d := b.dir
	return append(os.Environ(),
		"HOME="+d+"/home",
		"RABBITMQ_HOME=/usr/lib/rabbitmq",
		"RABBITMQ_NODENAME="+b.node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(b.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(b.dist),
		"RABBITMQ_CONFIG_FILE="+d+"/rabbitmq.conf",
		"RABBITMQ_ENABLED_PLUGINS_FILE="+d+"/enabled_plugins",
		"RABBITMQ_MNESIA_BASE="+d+"/mnesia",
		"RABBITMQ_LOG_BASE="+d+"/log",
		"RABBITMQ_PID_FILE="+d+"/beam.pid",
		"RABBITMQ_CONF_ENV_FILE="+d+"/rabbitmq-env.conf",
		"RABBITMQ_ADVANCED_CONFIG_FILE="+d+"/advanced.config",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=+S 1:1 +A 4",
		"ERL_EPMD_PORT="+strconv.Itoa(b.epmd),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

// start launches the node and waits until it accepts AMQP connections.
func (b *privateBroker) start() {
	t := b.t
	t.Helper()
	_ = os.Remove(filepath.Join(b.dir, "beam.pid"))
	out, err := os.OpenFile(filepath.Join(b.dir, "server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	b.srv = exec.Command(rabbitServer)
	b.srv.Env = b.Env()
	b.srv.Stdout, b.srv.Stderr = out, out
	b.srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, b.srv.Start())
	done := make(chan struct{})
	b.srvDone = done
	go func() { _ = b.srv.Wait(); out.Close(); close(done) }()
	deadline := time.Now().Add(180 * time.Second)
	for {
		c, err := amqp.Dial(b.URL())
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(b.dir, "server.out"))
			t.Fatalf("private RabbitMQ exited at start: %s", tail(string(log), 2000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("private RabbitMQ did not accept connections in 180 s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// beamPid is the Erlang VM's pid (the server script writes it).
func (b *privateBroker) beamPid() (int, error) {
	raw, err := os.ReadFile(filepath.Join(b.dir, "beam.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return 0, errors.New("bad pid file")
	}
	return pid, nil
}

// kill9 kills the node's VM with SIGKILL and waits for the script to end.
func (b *privateBroker) kill9() {
	t := b.t
	t.Helper()
	pid, err := b.beamPid()
	if err != nil {
		t.Fatalf("beam pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	select {
	case <-b.srvDone:
	case <-time.After(30 * time.Second):
		// the script's own process group holds only what it started
		_ = syscall.Kill(-b.srv.Process.Pid, syscall.SIGKILL)
		<-b.srvDone
	}
}

func (b *privateBroker) cleanup() {
	if b.srv != nil && b.srv.Process != nil {
		select {
		case <-b.srvDone:
		default:
			if pid, err := b.beamPid(); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			_ = syscall.Kill(-b.srv.Process.Pid, syscall.SIGKILL)
			select {
			case <-b.srvDone:
			case <-time.After(10 * time.Second):
			}
		}
	}
	if b.epmdCmd != nil && b.epmdCmd.Process != nil {
		_ = syscall.Kill(-b.epmdCmd.Process.Pid, syscall.SIGKILL)
		_ = b.epmdCmd.Wait()
	}
	if os.Getenv("GREY_KEEP_BROKER_DIR") == "" {
		_ = os.RemoveAll(b.dir)
	}
}

// kept waits up to d for queue q (which nothing consumes) to hold at
// least n messages, as it did when the node was killed, and returns ""
// once it does; else what the node reports. A quorum queue reports its
// count once its Raft server has recovered the log.
func (b *privateBroker) kept(q string, n int, d time.Duration) string {
	t := b.t
	t.Helper()
	deadline := time.Now().Add(d)
	last := "no answer"
	for time.Now().Before(deadline) {
		got, err := passiveCount(b.URL(), q)
		if err == nil && got >= n {
			return ""
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d messages", got)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Sprintf("queue %s held %d confirmed messages before the kill; %v after the restart: %s", q, n, d, last)
}

// passiveCount is queue q's message count (a passive declare), bounded by
// 10 s: a broker that does not answer is an error too.
func passiveCount(url, q string) (int, error) {
	type res struct {
		n   int
		err error
	}
	c := make(chan res, 1)
	go func() {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			c <- res{0, err}
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			c <- res{0, err}
			return
		}
		qi, err := ch.QueueDeclarePassive(q, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
		c <- res{qi.Messages, err}
	}()
	select {
	case r := <-c:
		return r.n, r.err
	case <-time.After(10 * time.Second):
		return 0, errors.New("no answer to a passive queue.declare in 10 s")
	}
}

// diagnose logs what the node says of itself: its queues (type, state,
// messages, unconfirmed publishes), resource alarms and the tail of its
// log, so that a failed fault test names a broker-side cause.
func (b *privateBroker) diagnose() {
	t := b.t
	t.Helper()
	run := func(args ...string) {
		ctl := filepath.Join(filepath.Dir(rabbitServer), args[0])
		cmd := exec.Command(ctl, append([]string{"-n", b.node}, args[1:]...)...)
		cmd.Env = b.Env()
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		t.Logf("broker: %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 4000))
	}
	run("rabbitmqctl", "list_queues", "name", "type", "state", "messages", "messages_unacknowledged", "leader", "members")
	run("rabbitmq-diagnostics", "alarms")
	// the quorum queues' Raft servers the node knows of (a queue missing
	// here has no server to confirm what is published to it)
	run("rabbitmqctl", "eval", "ra_directory:list_registered(quorum_queues).")
	logs, _ := filepath.Glob(filepath.Join(b.dir, "log", "*.log"))
	for _, l := range logs {
		raw, _ := os.ReadFile(l)
		// connections opening and closing say nothing of the broker itself
		var keep []string
		for _, line := range strings.Split(string(raw), "\n") {
			if !strings.Contains(line, "AMQP connection") && !strings.Contains(line, "client unexpectedly closed") &&
				!strings.Contains(line, "authenticated and granted access") && !strings.Contains(line, "client-provided name") {
				keep = append(keep, line)
			}
		}
		t.Logf("broker log %s:\n%s", filepath.Base(l), tail(strings.Join(keep, "\n"), 20000))
	}
	raw, _ := os.ReadFile(filepath.Join(b.dir, "server.out"))
	t.Logf("broker server.out:\n%s", tail(string(raw), 3000))
}
