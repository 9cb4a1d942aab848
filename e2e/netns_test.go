package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Network namespaces for the partition test.
//
// Each server of a netns cluster runs in its own network namespace with two
// interfaces, each one end of a veth pair whose other end is a port of a
// bridge in the root namespace:
//
//	              root namespace (test process, client, worker nodes)
//	  client bridge gyc… 10.231.S.1/24          cluster bridge gyr… (no address)
//	     │          │          │                   │          │          │
//	  ┌──┴──────────┴──────────┴──┐             (cluster links: Raft and the
//	  │ s1 eth-c 10.231.S.11 …    │              servers' own HTTP: forwarding,
//	  │ s1 eth-r 10.232.S.11 …    │              joins, probes)
//	  └───────────────────────────┘
//
// The client network carries what clients and worker nodes send to a
// server; the cluster network carries what servers send each other (Raft on
// 10.232.S.1x:7000, and the API addresses the servers advertise to each
// other, http://10.232.S.1x:8080, used for forwarding to the leader). Taking
// the root-side end of one server's cluster link down partitions that server
// from the other servers, silently (packets are dropped, nothing is
// refused), while the test can still send it requests over the client
// network: exactly what is needed to check that an isolated leader accepts
// no writes.

// netnsPrefix starts the names of the namespaces this package creates;
// the creating test binary's pid follows, so leftovers of a killed run can
// be recognised and removed.
const netnsPrefix = "grey-e2e-"

var (
	netnsOnce   sync.Once
	netnsErr    error
	netnsSerial atomic.Int32
)

// requireNetns skips t when network namespaces cannot be used here (not
// root, no ip(8), no netns or veth support), unless CI=true, where that is
// a failure.
func requireNetns(t *testing.T) {
	t.Helper()
	netnsOnce.Do(func() { netnsErr = probeNetns() })
	if netnsErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("network namespaces are required with CI=true: %v", netnsErr)
	}
	t.Skipf("skipping: network namespaces unavailable (%v); run as root on Linux with ip(8) and veth/bridge support (with CI=true this fails instead)", netnsErr)
}

// probeNetns checks that a namespace and a veth pair into it can be made.
func probeNetns() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not running as root (euid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("ip(8) not found: %w", err)
	}
	sweepNetns()
	ns := fmt.Sprintf("%s%d-probe", netnsPrefix, os.Getpid())
	if err := ipCmd("netns", "add", ns); err != nil {
		return err
	}
	defer func() { _ = ipCmd("netns", "del", ns) }()
	veth := "gyp" + strconv.FormatInt(int64(os.Getpid()), 36)
	if err := ipCmd("link", "add", veth, "type", "veth", "peer", "name", veth+"x", "netns", ns); err != nil {
		return err
	}
	defer func() { _ = ipCmd("link", "del", veth) }()
	br := "gyb" + strconv.FormatInt(int64(os.Getpid()), 36)
	if err := ipCmd("link", "add", br, "type", "bridge"); err != nil {
		return err
	}
	return ipCmd("link", "del", br)
}

// sweepNetns removes namespaces and bridges left behind by test binaries
// that no longer run (killed before their cleanup).
func sweepNetns() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			rest, ok := strings.CutPrefix(name, netnsPrefix)
			if !ok {
				continue
			}
			pidStr, _, _ := strings.Cut(rest, "-")
			if pid, err := strconv.Atoi(pidStr); err == nil && !processAlive(pid) {
				killNetnsProcs(name)
				_ = ipCmd("netns", "del", name)
			}
		}
	}
	out, err = exec.Command("ip", "-o", "link", "show", "type", "bridge").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if !strings.HasPrefix(name, "gyc") && !strings.HasPrefix(name, "gyr") {
			continue
		}
		// gy{c,r}<pid base 36><serial>
		enc := name[3 : len(name)-1]
		if pid, err := strconv.ParseInt(enc, 36, 64); err == nil && !processAlive(int(pid)) {
			_ = ipCmd("link", "del", name)
		}
	}
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH
}

// killNetnsProcs SIGKILLs the processes left in namespace ns.
func killNetnsProcs(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ipCmd runs ip(8) with args.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netnsTopo is the two-network topology described above, for n servers.
type netnsTopo struct {
	t *testing.T
	// NS are the servers' namespaces.
	NS []string
	// ClientIP and ClusterIP are the servers' addresses on the client and
	// cluster networks.
	ClientIP, ClusterIP []string
	// clusterPort is the root-side end of each server's cluster link.
	clusterPort []string
	clientBr    string
	clusterBr   string
}

// newNetnsTopo builds the topology for n servers; it is torn down when the
// test ends (after the processes started later were killed: cleanups run
// last-registered first).
func newNetnsTopo(t *testing.T, n int) *netnsTopo {
	t.Helper()
	requireNetns(t)
	serial := netnsSerial.Add(1)
	pid36 := strconv.FormatInt(int64(os.Getpid()), 36)
	tag := pid36 + strconv.FormatInt(int64(serial%36), 36)
	subnet := pickSubnet(t)
	nt := &netnsTopo{t: t, clientBr: "gyc" + tag, clusterBr: "gyr" + tag}
	t.Cleanup(nt.teardown)
	must := func(args ...string) {
		t.Helper()
		if err := ipCmd(args...); err != nil {
			t.Fatalf("netns setup: %v", err)
		}
	}
	for _, br := range []string{nt.clientBr, nt.clusterBr} {
		must("link", "add", br, "type", "bridge")
		must("link", "set", br, "up")
	}
	must("addr", "add", fmt.Sprintf("10.231.%d.1/24", subnet), "dev", nt.clientBr)
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("%s%d-%d-s%d", netnsPrefix, os.Getpid(), serial, i)
		must("netns", "add", ns)
		nt.NS = append(nt.NS, ns)
		must("-n", ns, "link", "set", "lo", "up")
		for _, side := range []struct {
			br, kind, ifname, ip string
		}{
			{nt.clientBr, "c", "eth-c", fmt.Sprintf("10.231.%d.%d", subnet, 10+i)},
			{nt.clusterBr, "r", "eth-r", fmt.Sprintf("10.232.%d.%d", subnet, 10+i)},
		} {
			port := fmt.Sprintf("gy%s%s%d", side.kind, tag, i)
			must("link", "add", port, "type", "veth", "peer", "name", side.ifname, "netns", ns)
			must("link", "set", port, "master", side.br)
			must("link", "set", port, "up")
			must("-n", ns, "addr", "add", side.ip+"/24", "dev", side.ifname)
			must("-n", ns, "link", "set", side.ifname, "up")
			if side.kind == "c" {
				nt.ClientIP = append(nt.ClientIP, side.ip)
			} else {
				nt.ClusterIP = append(nt.ClusterIP, side.ip)
				nt.clusterPort = append(nt.clusterPort, port)
			}
		}
	}
	return nt
}

// pickSubnet returns a third octet S such that neither 10.231.S.0/24 nor
// 10.232.S.0/24 is in use in the root namespace.
func pickSubnet(t *testing.T) int {
	out, err := exec.Command("ip", "-o", "addr", "show").Output()
	if err != nil {
		t.Fatalf("ip addr show: %v", err)
	}
	used := string(out)
	start := (os.Getpid() + int(netnsSerial.Load())*7) % 250
	for k := range 250 {
		s := (start+k)%250 + 1
		if !strings.Contains(used, fmt.Sprintf("10.231.%d.", s)) && !strings.Contains(used, fmt.Sprintf("10.232.%d.", s)) {
			return s
		}
	}
	t.Fatal("no free 10.231.x.0/24 subnet")
	return 0
}

// Isolate cuts server i (0-based) off the cluster network: its cluster
// link goes down at the bridge, so packets between it and the other servers
// are dropped. It still answers on the client network.
func (nt *netnsTopo) Isolate(i int) {
	nt.t.Helper()
	if err := ipCmd("link", "set", nt.clusterPort[i], "down"); err != nil {
		nt.t.Fatalf("isolate server %d: %v", i+1, err)
	}
}

// Heal brings server i's cluster link back up.
func (nt *netnsTopo) Heal(i int) {
	nt.t.Helper()
	if err := ipCmd("link", "set", nt.clusterPort[i], "up"); err != nil {
		nt.t.Fatalf("heal server %d: %v", i+1, err)
	}
}

func (nt *netnsTopo) teardown() {
	for _, ns := range nt.NS {
		killNetnsProcs(ns)
		if err := ipCmd("netns", "del", ns); err != nil {
			nt.t.Logf("netns teardown: %v", err)
		}
	}
	for _, br := range []string{nt.clientBr, nt.clusterBr} {
		_ = ipCmd("link", "del", br)
	}
}
