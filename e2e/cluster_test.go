package e2e

// Cluster tests (issue #5): three greyd servers with tuned Raft timeouts
// (worker.enabled: false) and worker-only nodes, under a continuous
// submit/read load recorded for a linearizability check (see
// cluster_load_test.go and the model in cluster_model_test.go):
//
//   - TestClusterLeaderKill: SIGKILL the leader, keep the load going,
//     restart it after ~3s.
//   - TestClusterWorkerKill: SIGKILL a worker node that holds leases; its
//     tasks are retried on the other worker after tasks.lease_ttl.
//   - TestClusterPartition: servers in network namespaces (netns_test.go);
//     the leader is cut off from the other servers, keeps receiving
//     submits straight from the test (none may be acknowledged), and the
//     link is healed.
//   - TestClusterFailoverReads: repeated leader kills under a tight write
//     load, with reads of the just-acknowledged tasks sent straight to the
//     survivors (the moment a new leader starts serving).
//
// After the fault is over and every task finished, each test checks that
// every acknowledged task exists, that each idempotency key has at most one
// task and a submit without a key created at most one, that batches are
// all or nothing, that every task completed exactly once (its last attempt
// completed, no other attempt did), that the replicas converge, and that
// the recorded client history is linearizable (porcupine). The leader-kill
// and partition tests end with crash-restart-every-server: each server in
// turn is SIGKILLed and must come back.
//
//	GREY_E2E=1 go test -count=1 -run 'TestCluster|TestTaskModel' -v ./e2e/
//
// TestClusterPartition needs root and ip(8) with netns, veth and bridge
// support; without them it skips, unless CI=true, where it fails.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

// Tuned Raft timeouts (config validation: each at least 5ms, election
// timeout >= heartbeat timeout >= leader lease timeout) and a short lease
// TTL (at least 1s), so that failover and lease expiry take seconds.
const (
	clusterServerConfig = `raft:
  heartbeat_timeout: 500ms
  election_timeout: 500ms
  leader_lease_timeout: 250ms
tasks:
  lease_ttl: 3s
  retry:
    max_retries: 20
    base_delay: 50ms
    max_delay: 1s
worker:
  enabled: false
`
	clusterWorkerConfig = `worker:
  concurrency: 32
  shutdown_grace: 2s
`
	clusterLeaseTTL = 3 * time.Second
)

// clusterServer is one greyd server of a test cluster.
type clusterServer struct {
	*nodeProc
	ID string
	// URL is the API base URL clients and worker nodes use.
	URL string
	// PeerURL is the API address the servers advertise to each other.
	PeerURL string
	// Index is the server's position (0-based).
	Index int
	// Metrics is the metrics listener's host:port.
	Metrics string
}

// testCluster is a 3-server cluster with worker-only nodes.
type testCluster struct {
	t       *testing.T
	dir     string
	Servers []*clusterServer
	Workers []*nodeProc
	Net     *netnsTopo // nil: 127.0.0.x loopback
	hc      *http.Client
}

// startCluster starts three servers (worker.enabled: false) and workers
// worker-only nodes and waits until all servers are ready and members.
// With nt the servers run in its namespaces; otherwise on 127.0.0.11-13.
func startCluster(t *testing.T, nt *netnsTopo, workers int) *testCluster {
	t.Helper()
	return startClusterWith(t, nt, workers, clusterServerConfig)
}

// startClusterWith is startCluster with the servers' config.
func startClusterWith(t *testing.T, nt *netnsTopo, workers int, serverConfig string) *testCluster {
	t.Helper()
	began := time.Now()
	c := &testCluster{t: t, dir: t.TempDir(), Net: nt, hc: &http.Client{Timeout: time.Second}}
	const n = 3
	type addrs struct{ http, raft, metrics, ns string }
	as := make([]addrs, n)
	for i := range n {
		s := &clusterServer{ID: fmt.Sprintf("n%d", i+1), Index: i}
		if nt != nil {
			as[i] = addrs{"0.0.0.0:8080", nt.ClusterIP[i] + ":7000", "127.0.0.1:9090", nt.NS[i]}
			s.URL, s.PeerURL = "http://"+nt.ClientIP[i]+":8080", "http://"+nt.ClusterIP[i]+":8080"
		} else {
			host := fmt.Sprintf("127.0.0.%d", 11+i)
			port := func() string { return fmt.Sprintf("%s:%d", host, freePortOn(t, host)) }
			as[i] = addrs{port(), port(), port(), ""}
			s.URL = "http://" + as[i].http
			s.PeerURL = s.URL
		}
		s.Metrics = as[i].metrics
		c.Servers = append(c.Servers, s)
	}
	for i, s := range c.Servers {
		cfg := serverConfig
		if nt != nil {
			// The namespaces are reachable from this test only: mode
			// none may listen on their addresses.
			cfg += "http:\n  advertise: " + s.PeerURL + "\nauth:\n  insecure_none_beyond_loopback: true\n"
		}
		cfgPath := filepath.Join(c.dir, s.ID+".yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{
			"--config", cfgPath, "--node-id", s.ID, "--data-dir", filepath.Join(c.dir, s.ID),
			"--http-addr", as[i].http, "--raft-addr", as[i].raft, "--metrics-addr", as[i].metrics,
		}
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			// Join through every other server; the same flags serve a
			// restart (joining again as a member is a no-op).
			var others []string
			for _, o := range c.Servers {
				if o != s {
					others = append(others, o.PeerURL)
				}
			}
			args = append(args, "--join", strings.Join(others, ","))
		}
		s.nodeProc = newNodeProc(t, c.dir, s.ID, as[i].ns, args...)
		s.Start()
		c.waitReady(s, 30*time.Second)
	}
	c.waitMembers(30 * time.Second)
	wcfg := filepath.Join(c.dir, "worker.yaml")
	if err := os.WriteFile(wcfg, []byte(clusterWorkerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range workers {
		id := fmt.Sprintf("w%d", i+1)
		w := newNodeProc(t, c.dir, id, "", "--role", "worker", "--config", wcfg, "--node-id", id, "--data-dir", filepath.Join(c.dir, id),
			"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1")),
			"--servers", strings.Join(c.URLs(), ","), "--labels", "pool=e2e")
		w.Start()
		c.Workers = append(c.Workers, w)
	}
	mode := "127.0.0.x loopback"
	if nt != nil {
		mode = "network namespaces"
	}
	t.Logf("cluster of %d servers (%s) and %d worker nodes up in %s; dir %s", n, mode, workers, time.Since(began).Round(time.Millisecond), c.dir)
	return c
}

// URLs are the servers' client URLs.
func (c *testCluster) URLs() []string {
	var out []string
	for _, s := range c.Servers {
		out = append(out, s.URL)
	}
	return out
}

// Client is a client over all servers.
func (c *testCluster) Client(tenant string) *client.Client {
	cl, err := client.New(strings.Join(c.URLs(), ","), client.WithTenant(tenant))
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// self is a server's own view of the cluster (never forwarded).
func (c *testCluster) self(s *clusterServer) (*client.ClusterInfo, error) {
	resp, err := c.hc.Get(s.URL + "/api/v1/cluster/self")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var ci client.ClusterInfo
	if err := json.NewDecoder(resp.Body).Decode(&ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// waitReady polls s's /readyz until it answers 200 and returns how long
// that took; it fails the test when s exits first or timeout passes.
func (c *testCluster) waitReady(s *clusterServer, timeout time.Duration) time.Duration {
	c.t.Helper()
	d, err := c.ready(s, timeout)
	if err != nil {
		c.t.Fatal(err)
	}
	return d
}

// ready polls s's /readyz until it answers 200.
func (c *testCluster) ready(s *clusterServer, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		select {
		case <-s.Exited():
			return 0, fmt.Errorf("%s exited before it was ready; stderr:\n%s", s.ID, tail([]byte(s.Stderr()), 3000))
		default:
		}
		resp, err := c.hc.Get(s.URL + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		time.Sleep(25 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not ready after %s (last: %s)", s.ID, timeout, last)
}

// crashRestartAll SIGKILLs and restarts every server in turn, waiting for
// each to be ready again: a server must survive a crash at any moment,
// also after the faults the test put it through. It stops at the first
// server that does not come back (with two of three left, the next kill
// would end the quorum).
func (c *testCluster) crashRestartAll(t *testing.T) {
	t.Helper()
	for _, s := range c.Servers {
		b, _ := os.ReadFile(s.logPath)
		run := string(b)
		if i := strings.LastIndex(run, "==== "); i >= 0 {
			run = run[i:] // the current run's log
		}
		s.Kill()
		s.Start()
		d, err := c.ready(s, 30*time.Second)
		if err != nil {
			var suffix []string
			for _, line := range strings.Split(run, "\n") {
				if strings.Contains(line, "clearing log suffix") {
					suffix = append(suffix, line)
				}
			}
			t.Errorf("%s did not come back after a SIGKILL: %v\nits run before the kill truncated its Raft log %d times: %s",
				s.ID, err, len(suffix), strings.Join(suffix, "; "))
			return
		}
		t.Logf("%s: SIGKILL and restart, ready in %s", s.ID, d.Round(time.Millisecond))
	}
	c.waitConverged(20 * time.Second)
}

// waitMembers waits until the leader lists every server as a voter with
// its API address.
func (c *testCluster) waitMembers(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if l := c.leaderAmong(c.Servers); l != nil {
			ci, err := c.self(l)
			if err == nil {
				voters := 0
				for _, m := range ci.Members {
					if m.Role == client.RoleServer && m.Suffrage == client.SuffrageVoter && m.APIAddr != "" {
						voters++
					}
				}
				if voters == len(c.Servers) {
					return
				}
				last = fmt.Sprintf("%d voters with API addresses", voters)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("cluster did not get %d voters in %s (%s)", len(c.Servers), timeout, last)
}

// leaderAmong returns the server of among that leads by its own account
// and by the account of a majority of among, or nil.
func (c *testCluster) leaderAmong(among []*clusterServer) *clusterServer {
	votes := map[string]int{}
	claims := map[string]bool{}
	for _, s := range among {
		if !s.Running() {
			continue
		}
		ci, err := c.self(s)
		if err != nil || ci.LeaderID == "" {
			continue
		}
		votes[ci.LeaderID]++
		if ci.State == client.StateLeader && ci.LeaderID == s.ID {
			claims[s.ID] = true
		}
	}
	for _, s := range among {
		if claims[s.ID] && votes[s.ID] > len(among)/2 {
			return s
		}
	}
	return nil
}

// waitLeader waits until among has a leader (see leaderAmong).
func (c *testCluster) waitLeader(among []*clusterServer, timeout time.Duration) *clusterServer {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := c.leaderAmong(among); l != nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader among %d servers after %s", len(among), timeout)
	return nil
}

// others returns the servers other than s.
func (c *testCluster) others(s *clusterServer) []*clusterServer {
	var out []*clusterServer
	for _, o := range c.Servers {
		if o != s {
			out = append(out, o)
		}
	}
	return out
}

// waitConverged waits until every server has applied the same index and
// counts the same tasks by status (the replicas agree).
func (c *testCluster) waitConverged(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var views []*client.ClusterInfo
		for _, s := range c.Servers {
			ci, err := c.self(s)
			if err != nil {
				last = s.ID + ": " + err.Error()
				break
			}
			views = append(views, ci)
		}
		if len(views) == len(c.Servers) {
			same := true
			for _, v := range views[1:] {
				if v.AppliedIndex != views[0].AppliedIndex || fmt.Sprint(v.Tasks) != fmt.Sprint(views[0].Tasks) {
					same = false
				}
			}
			if same {
				return
			}
			var parts []string
			for _, v := range views {
				parts = append(parts, fmt.Sprintf("%s applied %d tasks %v", v.NodeID, v.AppliedIndex, v.Tasks))
			}
			last = strings.Join(parts, "; ")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Errorf("replicas did not converge in %s: %s", timeout, last)
}

// startBurst starts load.readBurst against servers and returns a function
// that stops it and logs what it saw.
func startBurst(load *clusterLoad, servers []*clusterServer) func() {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URL)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var answered, notFound int
	go func() {
		defer close(done)
		answered, notFound = load.readBurst(urls, stop)
	}()
	return func() {
		close(stop)
		<-done
		load.t.Logf("read burst at the surviving servers: %d reads of just-acknowledged tasks answered, %d of them 404", answered, notFound)
	}
}

// TestClusterLeaderKill: SIGKILL the leader under load, restart it ~3s
// later.
func TestClusterLeaderKill(t *testing.T) {
	requireE2E(t)
	c := startCluster(t, nil, 2)
	load := startLoad(t, "clu-kill", c.URLs(), 4)
	time.Sleep(2 * time.Second)

	leader := c.waitLeader(c.Servers, 10*time.Second)
	burst := startBurst(load, c.others(leader))
	leader.Kill()
	killAt := load.now() // the process is gone
	t.Logf("SIGKILLed leader %s", leader.ID)
	next := c.waitLeader(c.others(leader), 15*time.Second)
	elected := time.Duration(load.now() - killAt)
	t.Logf("new leader %s %s after the kill", next.ID, elected.Round(time.Millisecond))
	time.Sleep(time.Second)
	burst()

	time.Sleep(3*time.Second - time.Duration(load.now()-killAt))
	leader.Start()
	ready := c.waitReady(leader, 30*time.Second)
	t.Logf("%s restarted, ready in %s", leader.ID, ready.Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	load.Stop()

	gap, ok := load.firstAckAfter(killAt)
	if !ok {
		t.Fatalf("no write was acknowledged after the leader was killed")
	}
	t.Logf("writes unavailable for %s after the kill (first acknowledged submit sent after it)", gap.Round(time.Millisecond))
	if gap > 10*time.Second {
		t.Errorf("writes unavailable for %s after the leader was killed, want < 10s", gap)
	}
	load.verify(c.Client("clu-kill"), 60*time.Second)
	c.waitConverged(20 * time.Second)
	t.Run("crash-restart-every-server", c.crashRestartAll)
}

// TestClusterFailoverReads: reads right after a leader change. A leader
// under a tight write load is SIGKILLed, repeatedly, while reads of the
// tasks it just acknowledged go straight to the surviving servers; a 404,
// or an older version of a task than one already read, is a
// linearizability violation (the history check reports it). The killed
// server comes back with a wiped data dir (it rejoins and catches up), so
// that its own restart cannot fail (see crash-restart-every-server).
func TestClusterFailoverReads(t *testing.T) {
	requireE2E(t)
	c := startCluster(t, nil, 1)
	load := startLoad(t, "clu-reads", c.URLs(), 2)
	time.Sleep(time.Second)
	const rounds = 6
	for round := 1; round <= rounds; round++ {
		leader := c.waitLeader(c.Servers, 15*time.Second)
		stopTight := make(chan struct{})
		tight := load.tightSubmits(leader.URL, 6, stopTight)
		time.Sleep(300 * time.Millisecond)
		burst := startBurst(load, c.others(leader))
		leader.Kill()
		close(stopTight)
		tight.Wait()
		next := c.waitLeader(c.others(leader), 15*time.Second)
		time.Sleep(300 * time.Millisecond)
		burst()
		c.wipeAndRejoin(leader)
		t.Logf("round %d: killed leader %s, new leader %s; %s back with a wiped data dir", round, leader.ID, next.ID, leader.ID)
	}
	load.verify(c.Client("clu-reads"), 60*time.Second)
}

// wipeAndRejoin starts a killed server again on an empty data dir: it
// joins through the others (never bootstraps) and catches up from the
// leader.
func (c *testCluster) wipeAndRejoin(s *clusterServer) {
	c.t.Helper()
	var dataDir string
	var args []string
	for i := 0; i < len(s.Args); i++ {
		switch s.Args[i] {
		case "--bootstrap":
			continue
		case "--join":
			i++ // replaced below
			continue
		case "--data-dir":
			dataDir = s.Args[i+1]
		}
		args = append(args, s.Args[i])
	}
	var others []string
	for _, o := range c.others(s) {
		others = append(others, o.PeerURL)
	}
	s.Args = append(args, "--join", strings.Join(others, ","))
	if err := os.RemoveAll(dataDir); err != nil {
		c.t.Fatal(err)
	}
	s.Start()
	c.waitReady(s, 30*time.Second)
}

// TestClusterWorkerKill: SIGKILL a worker node while it holds leases; its
// tasks must be retried on the other worker once their leases expire.
func TestClusterWorkerKill(t *testing.T) {
	requireE2E(t)
	c := startCluster(t, nil, 2)
	load := startLoad(t, "clu-worker", c.URLs(), 4)
	time.Sleep(2 * time.Second)

	// Tasks long enough to be certainly running when the worker dies.
	cl := c.Client("clu-worker")
	long := make([]task.Spec, 8)
	for i := range long {
		long[i] = task.Spec{Kind: "sleep", Payload: json.RawMessage(`{"ms":1500}`), IdempotencyKey: fmt.Sprintf("clu-worker-long-%d", i)}
	}
	_, ok := load.submit(cl, 900, "all", long, true)
	if !ok {
		t.Fatal("submit of the long tasks was not acknowledged")
	}
	victim, held := "", map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for victim == "" {
		p, err := cl.List(ctx, client.ListOptions{Status: []task.Status{task.Running}, Limit: 1000})
		if ctx.Err() != nil {
			t.Fatalf("no long task running after 10s (last error %v)", err)
		}
		if err == nil {
			for _, tk := range p.Tasks {
				if tk.Lease != nil && strings.HasPrefix(tk.IdempotencyKey, "clu-worker-long-") {
					victim = tk.Lease.WorkerID
					break
				}
			}
			for _, tk := range p.Tasks {
				if tk.Lease != nil && tk.Lease.WorkerID == victim {
					held[tk.ID] = true
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var w *nodeProc
	for _, p := range c.Workers {
		if p.Name == victim {
			w = p
		}
	}
	if w == nil {
		t.Fatalf("running task leased by %q, not a worker node of the test", victim)
	}
	killedAt := time.Now()
	w.Kill()
	t.Logf("SIGKILLed worker %s holding %d running tasks", victim, len(held))

	time.Sleep(clusterLeaseTTL + 3*time.Second)
	load.Stop()
	all := load.verify(cl, 60*time.Second)
	c.waitConverged(20 * time.Second)

	// The victim's tasks: the attempt on the victim expired, a later one
	// on another worker completed, not before the lease could expire.
	moved := 0
	for id := range held {
		tk := all[id]
		if tk == nil || len(tk.Attempts) == 0 {
			continue
		}
		var onVictim *task.Attempt
		for i := range tk.Attempts {
			if tk.Attempts[i].WorkerID == victim && tk.Attempts[i].LeasedAt.Before(killedAt) {
				onVictim = &tk.Attempts[i]
			}
		}
		last := tk.Attempts[len(tk.Attempts)-1]
		if onVictim == nil || last.WorkerID == victim {
			continue
		}
		if onVictim.Error == nil || onVictim.Error.Code != "lease_expired" {
			t.Errorf("task %s: the attempt on killed worker %s did not end with lease_expired: %s", id, victim, describeAttempts(tk))
			continue
		}
		moved++
		after := last.LeasedAt.Sub(killedAt)
		t.Logf("task %s: retried on %s %s after the kill (%s)", shortID(id), last.WorkerID, after.Round(time.Millisecond), describeAttempts(tk))
		if d := last.LeasedAt.Sub(onVictim.LeasedAt); d < clusterLeaseTTL {
			t.Errorf("task %s re-leased %s after its lease on %s was granted, before lease_ttl %s", id, d, victim, clusterLeaseTTL)
		}
		if after > clusterLeaseTTL+5*time.Second {
			t.Errorf("task %s re-leased only %s after the worker died (lease_ttl %s)", id, after, clusterLeaseTTL)
		}
	}
	if moved == 0 {
		t.Errorf("none of the %d tasks held by killed worker %s was retried on the other worker", len(held), victim)
	}
}

// TestClusterPartition: cut the leader off from the other servers (network
// namespaces), keep the load going and send writes straight to the
// isolated old leader, then heal.
func TestClusterPartition(t *testing.T) {
	requireE2E(t)
	nt := newNetnsTopo(t, 3)
	c := startCluster(t, nt, 2)
	load := startLoad(t, "clu-part", c.URLs(), 4)
	time.Sleep(2 * time.Second)

	old := c.waitLeader(c.Servers, 10*time.Second)
	burst := startBurst(load, c.others(old))
	nt.Isolate(old.Index)
	cutAt := load.now() // the link is down
	t.Logf("isolated leader %s from the other servers", old.ID)
	stopDirect := make(chan struct{})
	directDone := make(chan struct{})
	go func() {
		defer close(directDone)
		load.probeDirect(old.URL, 100*time.Millisecond, stopDirect)
	}()

	next := c.waitLeader(c.others(old), 15*time.Second)
	t.Logf("majority elected %s %s after the cut", next.ID, time.Duration(load.now()-cutAt).Round(time.Millisecond))
	time.Sleep(time.Second)
	burst()
	if ci, err := c.self(old); err == nil {
		t.Logf("isolated %s now says: state %s, leader %q, term %d", old.ID, ci.State, ci.LeaderID, ci.Term)
	}
	time.Sleep(6*time.Second - time.Duration(load.now()-cutAt))
	close(stopDirect)
	<-directDone
	healAt := load.now()
	nt.Heal(old.Index)
	t.Logf("healed after %s", time.Duration(healAt-cutAt).Round(time.Millisecond))

	gap, ok := load.firstAckAfter(cutAt)
	switch {
	case !ok:
		t.Errorf("no write acknowledged after the partition")
	default:
		t.Logf("writes unavailable for %s after the cut; %d submits acknowledged during the partition", gap.Round(time.Millisecond), load.acksBetween(cutAt, healAt))
		if load.acksBetween(cutAt, healAt) == 0 {
			t.Errorf("the majority side acknowledged no write during the partition")
		}
	}

	// The isolated server rejoins and catches up.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ci, err := c.self(old)
		if err == nil && ci.LeaderID != "" { // it had none while cut off
			t.Logf("%s back: state %s, leader %s, %s after the heal", old.ID, ci.State, ci.LeaderID, time.Duration(load.now()-healAt).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not rejoin within 20s of the heal (%v %+v)", old.ID, err, ci)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	load.Stop()

	// No write sent to the minority side was acknowledged.
	load.mu.Lock()
	direct := append([]directWrite(nil), load.direct...)
	load.mu.Unlock()
	errs := map[string]int{}
	for _, d := range direct {
		if d.Acked {
			t.Errorf("isolated old leader %s acknowledged submit %s (task %s) at %.3fs-%.3fs, during the partition",
				old.ID, d.Key, d.ID, float64(d.Span.Call)/1e9, float64(d.Span.Return)/1e9)
			continue
		}
		msg := d.Err
		if len(msg) > 90 {
			msg = msg[:90] + "…"
		}
		errs[msg]++
	}
	t.Logf("%d submits sent straight to the isolated %s, none acknowledged; errors: %v", len(direct), old.ID, errs)

	all := load.verify(c.Client("clu-part"), 60*time.Second)
	c.waitConverged(20 * time.Second)
	for _, d := range direct {
		for _, tk := range all {
			if tk.IdempotencyKey == d.Key {
				t.Errorf("submit %s sent to the isolated leader during the partition exists after the heal (task %s)", d.Key, tk.ID)
			}
		}
	}
	// How much work completed while the leader was cut off.
	from, to := load.At(cutAt), load.At(healAt)
	done := 0
	for _, tk := range all {
		if tk.FinishedAt != nil && tk.FinishedAt.After(from) && tk.FinishedAt.Before(to) {
			done++
		}
	}
	// How much work was leased, and by whom, while the leader was cut off.
	leased := map[string]int{}
	var firstAfterHeal time.Time
	for _, tk := range all {
		for _, a := range tk.Attempts {
			switch {
			case a.LeasedAt.After(from) && a.LeasedAt.Before(to):
				leased[a.WorkerID]++
			case a.LeasedAt.After(to) && (firstAfterHeal.IsZero() || a.LeasedAt.Before(firstAfterHeal)):
				firstAfterHeal = a.LeasedAt
			}
		}
	}
	t.Logf("during the %s partition: %d tasks completed, tasks leased by worker: %v; first lease after the heal %s after it",
		to.Sub(from).Round(time.Millisecond), done, leased, firstAfterHeal.Sub(to).Round(time.Millisecond))
	if done == 0 {
		// Not a safety violation, but an availability one: the workers'
		// lease long polls were taken by the old leader before the cut,
		// and engine.Lease keeps a poll waiting while its server knows
		// no leader (it does not fail the poll over to the majority).
		t.Logf("NOTE: no task ran while the old leader was isolated, although the majority side accepted writes")
	}
	t.Run("crash-restart-every-server", c.crashRestartAll)
}
