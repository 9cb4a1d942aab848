package kafkaevents_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grey-distributed/grey/internal/testenv"
)

// privateKafka is a single-node KRaft Kafka of one test, started from the
// jars scripts/services.sh installs, on ports of its own: fault tests
// kill -9 it without disturbing the shared broker other tests use.
type privateKafka struct {
	t       *testing.T
	dir     string
	lib     string
	port    int
	ctlPort int
	cmd     *exec.Cmd
	log     *os.File
	starts  int
	// securePort is the SASL_SSL listener's port (0: none).
	securePort int
}

// kafkaSecurity adds a SASL_SSL listener to a private broker: SCRAM users
// created at format time and a server certificate in a PEM keystore.
type kafkaSecurity struct {
	// keystore is a PEM file holding the server's PKCS#8 key and its
	// certificate chain.
	keystore string
	// scram are the storage tool's --add-scram values
	// ("SCRAM-SHA-256=[name=alice,password=secret]").
	scram []string
}

// kafkaLib finds the jars of the Kafka scripts/services.sh installed
// (GREY_KAFKA_LIB, or <cache>/kafka-*/lib).
func kafkaLib() (string, error) {
	if v := os.Getenv("GREY_KAFKA_LIB"); v != "" {
		return v, nil
	}
	var roots []string
	if v := os.Getenv("GREY_SERVICES_CACHE"); v != "" {
		roots = append(roots, v)
	}
	roots = append(roots, "/opt/grey-services")
	if h, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(h, ".cache", "grey-services"))
	}
	for _, r := range roots {
		m, _ := filepath.Glob(filepath.Join(r, "kafka-*", "lib", "kafka_2.13-*.jar"))
		sort.Strings(m)
		if len(m) > 0 {
			return filepath.Dir(m[len(m)-1]), nil
		}
	}
	return "", fmt.Errorf("no Kafka jars under %v (scripts/services.sh up kafka installs them; or set GREY_KAFKA_LIB)", roots)
}

// startPrivateKafka starts a broker of the test's own. It is gated like
// the shared broker (GREY_TEST_KAFKA_URL: Kafka is installed and meant to
// be used) and also needs java and the jars.
func startPrivateKafka(t *testing.T) *privateKafka {
	t.Helper()
	return startPrivateKafkaWith(t, nil)
}

// startPrivateKafkaWith starts a private broker with a SASL_SSL listener
// besides the plaintext one when sec is not nil.
func startPrivateKafkaWith(t *testing.T, sec *kafkaSecurity) *privateKafka {
	t.Helper()
	testenv.ServiceURL(t, "kafka")
	lib, err := kafkaLib()
	if err == nil {
		_, err = exec.LookPath("java")
	}
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("private Kafka: %v", err)
		}
		t.Skipf("private Kafka: %v", err)
	}
	k := &privateKafka{t: t, dir: t.TempDir(), lib: lib, port: freePort(t), ctlPort: freePort(t)}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=1
`, k.port, k.ctlPort, k.dir)
	var format []string
	if sec != nil {
		k.securePort = freePort(t)
		r := strings.NewReplacer(
			fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,", k.port), fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,", k.port, k.securePort),
			fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d\n", k.port), fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d\n", k.port, k.securePort),
			"PLAINTEXT:PLAINTEXT\n", "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL\n")
		props = r.Replace(props) + fmt.Sprintf(`sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=%s
ssl.client.auth=none
`, sec.keystore)
		for _, s := range sec.scram {
			format = append(format, "--add-scram", s)
		}
	}
	if err := os.WriteFile(filepath.Join(k.dir, "server.properties"), []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	log4j := "status = warn\nappender.out.type = Console\nappender.out.name = OUT\nappender.out.layout.type = PatternLayout\n" +
		"appender.out.layout.pattern = [%d] %p %m (%c)%n\nrootLogger.level = INFO\nrootLogger.appenderRef.out.ref = OUT\n" +
		"logger.apache.name = org.apache.kafka\nlogger.apache.level = WARN\n"
	if err := os.WriteFile(filepath.Join(k.dir, "log4j2.properties"), []byte(log4j), 0o644); err != nil {
		t.Fatal(err)
	}
	// A cluster id starting with '-' reads as an option to the storage
	// tool (one in 64 random ids; Kafka's own Uuid.randomUuid skips them).
	var cid string
	for cid == "" || cid[0] == '-' {
		var id [16]byte
		_, _ = rand.Read(id[:])
		cid = base64.RawURLEncoding.EncodeToString(id[:])
	}
	args := append([]string{"-cp", filepath.Join(lib, "*"), "-Dlog4j2.configurationFile=" + filepath.Join(k.dir, "log4j2.properties"),
		"kafka.tools.StorageTool", "format", "-t", cid, "-c", filepath.Join(k.dir, "server.properties")}, format...)
	out, err := exec.Command("java", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kafka storage format: %v\n%s", err, out)
	}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// URL is the broker's kafka:// URL.
func (k *privateKafka) URL() string { return fmt.Sprintf("kafka://127.0.0.1:%d", k.port) }

// SecureURL is the kafka:// URL of the broker's SASL_SSL listener.
func (k *privateKafka) SecureURL() string { return fmt.Sprintf("kafka://127.0.0.1:%d", k.securePort) }

// Addr is the broker's host:port.
func (k *privateKafka) Addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

// start launches the broker (as scripts/services.sh does) and waits until
// it says it started.
func (k *privateKafka) start() {
	k.t.Helper()
	k.starts++
	logPath := filepath.Join(k.dir, fmt.Sprintf("kafka-%d.log", k.starts))
	f, err := os.Create(logPath)
	if err != nil {
		k.t.Fatal(err)
	}
	k.log = f
	k.cmd = exec.Command("java", "-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+filepath.Join(k.dir, "log4j2.properties"), "-Dkafka.logs.dir="+k.dir,
		"-cp", filepath.Join(k.lib, "*"), "kafka.Kafka", filepath.Join(k.dir, "server.properties"))
	k.cmd.Stdout, k.cmd.Stderr = f, f
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		if started(logPath) {
			if c, err := net.DialTimeout("tcp", k.Addr(), time.Second); err == nil {
				c.Close()
				return
			}
		}
		if k.cmd.ProcessState != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	k.t.Fatalf("private Kafka did not start within 120 s:\n%s", tail(string(b), 3000))
}

func started(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Kafka Server started") {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill9 kills the broker with SIGKILL and waits for it to be gone.
func (k *privateKafka) kill9() {
	k.t.Helper()
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
	_ = k.cmd.Wait()
	k.cmd = nil
	k.log.Close()
}

// stop kills the broker (a test's cleanup).
func (k *privateKafka) stop() { k.kill9() }

// waitUp waits until the broker answers on its port.
func (k *privateKafka) waitUp(ctx context.Context) error {
	for ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", k.Addr(), time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return ctx.Err()
}
