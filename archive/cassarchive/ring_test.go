package cassarchive_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/cassarchive"
	"github.com/grey-distributed/grey/greyerr"
)

// ringNode is one Cassandra node of a ring a test starts for itself with
// scripts/services.sh (its own data directory, loopback address and ports:
// drivers tell nodes apart by address, as in a real ring).
type ringNode struct {
	data            string
	host            string
	native, storage int
	seeds           string // empty for the ring's first node
	root            string // the repository, for scripts/services.sh
}

func (n *ringNode) env() []string {
	env := append(os.Environ(),
		"GREY_SERVICES_DATA="+n.data,
		"GREY_SERVICES_HOST="+n.host,
		"GREY_CASSANDRA_PORT="+strconv.Itoa(n.native),
		"GREY_CASSANDRA_STORAGE_PORT="+strconv.Itoa(n.storage),
		"GREY_CASSANDRA_AUTH=none")
	if n.seeds != "" {
		env = append(env, "GREY_CASSANDRA_SEEDS="+n.seeds)
	}
	return env
}

func (n *ringNode) services(t *testing.T, verb string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(n.root, "scripts", "services.sh"), verb, "cassandra")
	cmd.Env = n.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		// services.sh prints the log's last lines; why a node gave up
		// (a token collision, no seed) is logged earlier, as an ERROR.
		log, _ := os.ReadFile(filepath.Join(n.data, "cassandra", "cassandra.log"))
		var errs []string
		for _, l := range strings.Split(string(log), "\n") {
			if strings.HasPrefix(l, "ERROR") && len(errs) < 10 {
				errs = append(errs, l)
			}
		}
		return fmt.Errorf("services.sh %s cassandra (node %s:%d): %v\n%s\nthe node's errors:\n%s", verb, n.host, n.native, err, out, strings.Join(errs, "\n"))
	}
	return nil
}

// kill ends the node's JVM with SIGKILL: no drain, no flush.
func (n *ringNode) kill(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.data, "run", "cassandra.pid"))
	if err != nil {
		t.Fatalf("node %d: %v", n.native, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("node %d pid file: %v", n.native, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill node %d: %v", n.native, err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeSession connects to nd alone.
func nodeSession(nd *ringNode) (*gocql.Session, error) {
	c := gocql.NewCluster(fmt.Sprintf("%s:%d", nd.host, nd.native))
	c.DisableInitialHostLookup = true
	return c.CreateSession()
}

// waitPeers waits until s's node lists want peers with their tokens.
func waitPeers(t *testing.T, s *gocql.Session, want int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		joined := 0
		it := s.Query(`SELECT tokens FROM system.peers_v2`).Iter()
		var tokens []string
		for it.Scan(&tokens) {
			if len(tokens) > 0 {
				joined++
			}
		}
		err := it.Close()
		if err == nil && joined == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a node lists %d peers with tokens (%v), want %d", joined, err, want)
		}
	}
}

func freePortOn(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRing starts n nodes, one after the other (Cassandra bootstraps one
// node at a time), and stops them all when t ends.
func startRing(t *testing.T, n int) []*ringNode {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	var nodes []*ringNode
	t.Cleanup(func() {
		for _, nd := range nodes {
			if err := nd.services(t, "down"); err != nil {
				t.Log(err)
			}
		}
	})
	// A node answers once it has joined, but the others learn its tokens by
	// gossip a moment later: the next node bootstraps only once the first
	// one lists every earlier node with its tokens (else it may pick the
	// same tokens, or find no seed to talk to).
	var first *gocql.Session
	defer func() {
		if first != nil {
			first.Close()
		}
	}()
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("127.0.0.%d", 21+i)
		nd := &ringNode{data: filepath.Join(base, fmt.Sprintf("n%d", i+1)), host: host, native: freePortOn(t, host), storage: freePortOn(t, host), root: root}
		var seeds []string
		for _, p := range nodes {
			seeds = append(seeds, fmt.Sprintf("%s:%d", p.host, p.storage))
		}
		nd.seeds = strings.Join(seeds, ",")
		nodes = append(nodes, nd)
		if err := nd.services(t, "up"); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if first, err = nodeSession(nd); err != nil {
				t.Fatal(err)
			}
		}
		waitPeers(t, first, i)
	}
	// Then every node must know every other one (a client may ask any).
	for _, nd := range nodes[1:] {
		s, err := nodeSession(nd)
		if err != nil {
			t.Fatal(err)
		}
		waitPeers(t, s, n-1)
		s.Close()
	}
	return nodes
}

// TestRing runs the driver against a ring of three Cassandra nodes with
// three replicas of every record: the driver finds the whole ring from
// one contact point; with one node killed in the middle of a stream of
// writes, local_quorum (2 of 3) reads and writes go on and no
// acknowledged write is lost, while consistency all refuses writes
// naming the replicas it needs and has; with the node back, all works
// again.
func TestRing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts three Cassandra nodes")
	}
	// Cassandra's installation is the test service's (GREY_TEST_CASSANDRA_URL:
	// skips when unset, fails in CI).
	_ = serviceURL(t, testKeyspace, "")
	start := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	nodes := startRing(t, 3)
	phase("ring of 3 up")
	contact := nodes[0]
	raw := fmt.Sprintf("cassandra://%s:%d/grey_ring?replication=SimpleStrategy:3&timeout=5s&connect_timeout=3s", contact.host, contact.native)
	open := func(knobs string, retry archive.RetryOptions) *archive.Store {
		t.Helper()
		d, err := cassarchive.Open(ctxT(t), raw+knobs, archive.OpenOptions{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := archive.New(d, archive.Options{Retry: retry})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	// Retries long enough to ride over a node's death (the driver and the
	// coordinators notice it within seconds) for local_quorum; none for
	// all, whose errors the test reads.
	quorum := open("", archive.RetryOptions{MaxTries: 30, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsed: 45 * time.Second})
	if err := quorum.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	all := open("&consistency=all", archive.RetryOptions{MaxTries: 1})
	tenants := []string{archivetest.Tenant("ring-a"), archivetest.Tenant("ring-b"), archivetest.Tenant("ring-c")}
	batch := func(k int) []archive.Record {
		recs := make([]archive.Record, 0, 5)
		for j := 0; j < 5; j++ {
			recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: tenants[k%len(tenants)], Finished: time.Now().Add(-time.Minute)}))
		}
		return recs
	}
	first := batch(0)
	if err := all.Upsert(ctxT(t), first); err != nil {
		t.Fatalf("upsert at all with every node up: %v", err)
	}

	// A stream of local_quorum writes; the contact point dies in its middle.
	var (
		mu      sync.Mutex
		written []archive.Record
		failed  []error
	)
	done := make(chan struct{})
	killAt := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; k < 40; k++ {
			if k == 10 {
				close(killAt)
			}
			recs := batch(k)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := quorum.Upsert(ctx, recs)
			cancel()
			mu.Lock()
			if err != nil {
				failed = append(failed, fmt.Errorf("batch %d: %w", k, err))
			} else {
				written = append(written, recs...)
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	<-killAt
	contact.kill(t)
	t.Logf("killed node %s:%d (the driver's only contact point)", contact.host, contact.native)
	<-done
	phase("writes done")
	if len(failed) > 0 {
		t.Fatalf("local_quorum writes failed with one of three nodes down: %v", failed)
	}
	for _, r := range append(first, written...) {
		got, err := quorum.Get(ctxT(t), r.Task.TenantID, r.Task.ID)
		if err != nil || got.Task.ID != r.Task.ID {
			t.Fatalf("get %s at local_quorum with a node down: %v", r.Task.ID, err)
		}
	}
	phase("reads done")
	want := map[string]int{}
	for _, r := range append(first, written...) {
		want[r.Task.TenantID]++
	}
	for ten, n := range want {
		c, err := quorum.Count(ctxT(t), ten, archive.Filter{})
		if err != nil || c != int64(n) {
			t.Errorf("count of %s at local_quorum with a node down: %d, %v; want %d", ten, c, err, n)
		}
	}

	// consistency all: refused, naming what it needs, once the coordinators
	// know the node is down (before that, a write times out waiting for it:
	// also unavailable).
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := all.Upsert(ctx, batch(0))
		cancel()
		if err == nil {
			t.Fatal("upsert at all with one of three nodes down succeeded")
		}
		if !greyerr.Is(err, greyerr.Unavailable) && !greyerr.Is(err, greyerr.DeadlineExceeded) {
			t.Fatalf("upsert at all with a node down: %v, want unavailable", err)
		}
		if strings.Contains(err.Error(), "ALL needs 3 live replicas, 2 are alive") {
			t.Logf("upsert at all with a node down: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upsert at all never named the replicas it needs: %v", err)
		}
		time.Sleep(time.Second)
	}

	phase("all refused")
	// The node comes back (same data directory): all works again and
	// reads every record from the three replicas.
	if err := contact.services(t, "up"); err != nil {
		t.Fatal(err)
	}
	phase("node back")
	deadline = time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := all.Upsert(ctx, batch(1))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upsert at all after the node came back: %v", err)
		}
		time.Sleep(time.Second)
	}
	for _, r := range append(first, written...) {
		if _, err := all.Get(ctxT(t), r.Task.TenantID, r.Task.ID); err != nil {
			t.Fatalf("get %s at all after the node came back: %v", r.Task.ID, err)
		}
	}
}
