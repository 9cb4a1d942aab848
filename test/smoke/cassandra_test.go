package smoke

import (
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/grey-distributed/grey/internal/testenv"
)

func TestCassandra(t *testing.T) {
	u, err := url.Parse(testenv.ServiceURL(t, "cassandra"))
	if err != nil {
		t.Fatal(err)
	}
	hostport := u.Host
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	ctx := ctxFor(t, 90*time.Second)

	cluster := gocql.NewCluster(host)
	cluster.Port = port
	cluster.Timeout = 20 * time.Second
	cluster.ConnectTimeout = 10 * time.Second
	cluster.Consistency = gocql.One
	if pw, ok := u.User.Password(); ok { // the test Cassandra requires a password
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: u.User.Username(), Password: pw}
	}
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("connect %s: %v", hostport, err)
	}
	defer session.Close()

	ks := "grey_smoke_" + uniq()
	if err := session.Query(`CREATE KEYSPACE ` + ks + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`).ExecContext(ctx); err != nil {
		t.Fatalf("create keyspace: %v", err)
	}
	defer session.Query(`DROP KEYSPACE IF EXISTS ` + ks).ExecContext(ctx)
	if err := session.Query(`CREATE TABLE ` + ks + `.leases (id text PRIMARY KEY, owner text, epoch int)`).ExecContext(ctx); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if err := session.Query(`INSERT INTO `+ks+`.leases (id, owner, epoch) VALUES (?, ?, ?)`, "a", "node-1", 1).ExecContext(ctx); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var owner string
	if err := session.Query(`SELECT owner FROM `+ks+`.leases WHERE id = ?`, "a").ScanContext(ctx, &owner); err != nil || owner != "node-1" {
		t.Fatalf("select: owner=%q err=%v", owner, err)
	}

	// Lightweight transactions (Paxos): insert-if-not-exists and compare-and-set.
	applied, err := session.Query(`INSERT INTO `+ks+`.leases (id, owner, epoch) VALUES (?, ?, ?) IF NOT EXISTS`, "b", "node-1", 1).
		SerialConsistency(gocql.Serial).MapScanCASContext(ctx, map[string]any{})
	if err != nil || !applied {
		t.Fatalf("LWT insert: applied=%v err=%v", applied, err)
	}
	prev := map[string]any{}
	applied, err = session.Query(`INSERT INTO `+ks+`.leases (id, owner, epoch) VALUES (?, ?, ?) IF NOT EXISTS`, "b", "node-2", 1).
		SerialConsistency(gocql.Serial).MapScanCASContext(ctx, prev)
	if err != nil || applied {
		t.Fatalf("second LWT insert should not apply: applied=%v err=%v", applied, err)
	}
	if prev["owner"] != "node-1" {
		t.Errorf("LWT returned previous owner %v, want node-1", prev["owner"])
	}
	applied, err = session.Query(`UPDATE `+ks+`.leases SET owner = ?, epoch = ? WHERE id = ? IF epoch = ?`, "node-2", 2, "b", 1).
		SerialConsistency(gocql.Serial).MapScanCASContext(ctx, map[string]any{})
	if err != nil || !applied {
		t.Fatalf("LWT update: applied=%v err=%v", applied, err)
	}
}
