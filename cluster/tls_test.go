package cluster_test

import (
	"context"
	"crypto/tls"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/state"
)

// tlsNode opens a Raft node whose transport uses a server certificate
// named id from the CA in caDir.
func tlsNode(t *testing.T, caDir, id string, bootstrap bool) (*cluster.Node, *certs.Material) {
	t.Helper()
	is, err := certs.Issue(caDir, certs.IssueRequest{Name: id, Role: certs.RoleServer})
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.TLS = config.TLSConfig{CertFile: is.CertFile, KeyFile: is.KeyFile, CAFile: filepath.Join(caDir, certs.CACertFile)}
	m, err := certs.Load(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := cluster.Open(cluster.Config{
		NodeID: id, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: bootstrap,
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond, Logger: greytest.Logger(t), LogOutput: io.Discard,
		TLSServer: m.RaftServerConfig(), TLSClient: m.RaftClientConfig(),
	}, state.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(false) })
	return n, m
}

func newCA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := certs.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Over mutual TLS, a server from the cluster CA replicates; a server with a
// certificate from another CA cannot: its handshakes fail both ways, so
// even once it is in the configuration it receives nothing.
func TestTLSTransportRefusesForeignCA(t *testing.T) {
	t.Parallel()
	ca, other := newCA(t), newCA(t)
	s1, _ := tlsNode(t, ca, "s1", true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s1.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	greytest.Eventually(t, 10*time.Second, s1.IsLeader)

	s2, _ := tlsNode(t, ca, "s2", false)
	if err := s1.AddVoter(ctx, "s2", s2.LocalAddr()); err != nil {
		t.Fatalf("add s2: %v", err)
	}
	greytest.Eventually(t, 10*time.Second, func() bool {
		return s2.LeaderID() == "s1" && s2.Info().AppliedIndex >= s1.Info().CommitIndex && len(s2.Info().Servers) == 2
	})

	rogue, rogueTLS := tlsNode(t, other, "s3", false)
	// With s1 and s2 a majority of three, the change commits without s3.
	if err := s1.AddVoter(ctx, "s3", rogue.LocalAddr()); err != nil {
		t.Fatalf("add s3: %v", err)
	}
	barrier(t, s1, s2)
	// Heartbeats and appends to s3 run every few ms; give them a second.
	time.Sleep(time.Second)
	if info := rogue.Info(); info.AppliedIndex != 0 || info.LeaderID != "" || len(info.Servers) != 0 || !info.LastContact.IsZero() {
		t.Errorf("the foreign-CA node received replication: %+v", info)
	}
	// The handshake itself fails: the rogue does not trust s1, and s1
	// refuses the rogue's certificate even when the rogue trusts anyone.
	if _, err := tls.Dial("tcp", s1.LocalAddr(), rogueTLS.RaftClientConfig()); !certs.IsRefusal(err) {
		t.Errorf("rogue dial to s1: %v, want a TLS refusal", err)
	}
	trusting := &tls.Config{InsecureSkipVerify: true, GetClientCertificate: rogueTLS.Node.GetClientCertificate}
	c, err := tls.Dial("tcp", s1.LocalAddr(), trusting)
	if err == nil {
		// TLS 1.3: the server's refusal arrives on the first read.
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if !certs.IsRefusal(err) {
		t.Errorf("s1 accepted the rogue's certificate: %v", err)
	}
	// s1 and s2 still make progress.
	barrier(t, s1, s2)
}

// barrier commits a barrier on whichever of nodes leads (a loaded test
// machine may move leadership).
func barrier(t *testing.T, nodes ...*cluster.Node) {
	t.Helper()
	greytest.Eventually(t, 15*time.Second, func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				return n.Barrier(ctx) == nil
			}
		}
		return false
	})
}
