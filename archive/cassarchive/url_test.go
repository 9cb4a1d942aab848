package cassarchive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/grey-distributed/grey/greyerr"
)

func TestParseURL(t *testing.T) {
	c, err := ParseURL("cassandra://grey:s3cret@db1.internal:9142/Grey_Archive?hosts=db2.internal:9042,10.0.0.3&hosts=[fd00::4]:9043" +
		"&consistency=quorum&read_consistency=local_one&serial_consistency=serial&local_dc=eu-west_1" +
		"&replication=NetworkTopologyStrategy:eu-west_1=3,us-east=2&timeout=3s&connect_timeout=1500ms&bucket=1h")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Hosts:    []string{"db1.internal:9142", "db2.internal:9042", "10.0.0.3:9042", "[fd00::4]:9043"},
		Keyspace: "grey_archive", Username: "grey", Password: "s3cret",
		ReadConsistency: gocql.LocalOne, WriteConsistency: gocql.Quorum, SerialConsistency: gocql.Serial,
		LocalDC: "eu-west_1", Timeout: 3 * time.Second, ConnectTimeout: 1500 * time.Millisecond, Bucket: time.Hour,
	}
	if strings.Join(c.Hosts, " ") != strings.Join(want.Hosts, " ") {
		t.Errorf("hosts %v, want %v", c.Hosts, want.Hosts)
	}
	if c.Keyspace != want.Keyspace || c.Username != want.Username || c.Password != want.Password ||
		c.ReadConsistency != want.ReadConsistency || c.WriteConsistency != want.WriteConsistency ||
		c.SerialConsistency != want.SerialConsistency || c.LocalDC != want.LocalDC || c.Timeout != want.Timeout ||
		c.ConnectTimeout != want.ConnectTimeout || c.Bucket != want.Bucket {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if got := c.Replication.String(); got != "NetworkTopologyStrategy:eu-west_1=3,us-east=2" {
		t.Errorf("replication %s", got)
	}
	if got := c.Replication.cql(); got != "{'class': 'NetworkTopologyStrategy', 'eu-west_1': 3, 'us-east': 2}" {
		t.Errorf("replication CQL %s", got)
	}

	// Defaults.
	c, err = ParseURL("cassandra://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Keyspace != DefaultKeyspace || strings.Join(c.Hosts, ",") != "127.0.0.1:9042" ||
		c.ReadConsistency != gocql.LocalQuorum || c.WriteConsistency != gocql.LocalQuorum ||
		c.SerialConsistency != gocql.LocalSerial || c.Timeout != DefaultTimeout || c.Bucket != DefaultBucket ||
		c.Replication.Class != "" {
		t.Errorf("defaults: %+v", c)
	}
	// consistency=any writes at ANY and reads at ONE; each_quorum reads at
	// LOCAL_QUORUM; hosts only in the query; a duplicate host once.
	c, err = ParseURL("cassandra:///ks?hosts=a,b:1,a:9042&consistency=any")
	if err != nil {
		t.Fatal(err)
	}
	if c.WriteConsistency != gocql.Any || c.ReadConsistency != gocql.One || strings.Join(c.Hosts, ",") != "a:9042,b:1" {
		t.Errorf("consistency=any: %+v", c)
	}
	c, err = ParseURL("cassandra://h/ks?consistency=EACH_QUORUM&replication=simple:2")
	if err != nil {
		t.Fatal(err)
	}
	if c.WriteConsistency != gocql.EachQuorum || c.ReadConsistency != gocql.LocalQuorum || c.Replication.String() != "SimpleStrategy:2" {
		t.Errorf("each_quorum: %+v", c)
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, tc := range []struct {
		url, field, says string
	}{
		{"postgres://h/ks", "url", "scheme"},
		{"cassandra:h", "url", "two slashes"},
		{"cassandra:///ks", "hosts", "at least one contact point"},
		{"cassandra://h/ks?hosts=", "hosts", "empty"},
		{"cassandra://h/ks?hosts=a,,b", "hosts", `entry 3 ""`},
		{"cassandra://h/ks?hosts=a:0", "hosts", "port"},
		{"cassandra://h/ks?hosts=a:b:c", "hosts", "not host[:port]"},
		{"cassandra://h/ks?hosts=-bad-", "hosts", "neither an IP address nor a host name"},
		{"cassandra://h/ks?hosts=a%20b", "hosts", "neither"},
		{"cassandra://h/1ks", "keyspace", "not a keyspace name"},
		{"cassandra://h/ks.tasks", "keyspace", "not a keyspace name"},
		{"cassandra://h/" + strings.Repeat("k", 49), "keyspace", "not a keyspace name"},
		{"cassandra://h/ks?consistency=most", "consistency", "not a consistency level"},
		{"cassandra://h/ks?read_consistency=any", "read_consistency", "write level"},
		{"cassandra://h/ks?read_consistency=each_quorum", "read_consistency", "write level"},
		{"cassandra://h/ks?consistency=one&consistency=all", "consistency", "given 2 times"},
		{"cassandra://h/ks?serial_consistency=quorum", "serial_consistency", "serial or local_serial"},
		{"cassandra://h/ks?local_dc=dc'1", "local_dc", "not a data center"},
		{"cassandra://h/ks?replication=SimpleStrategy", "replication", "no replicas"},
		{"cassandra://h/ks?replication=SimpleStrategy:0", "replication", "replication factor"},
		{"cassandra://h/ks?replication=SimpleStrategy:x", "replication", "replication factor"},
		{"cassandra://h/ks?replication=NetworkTopologyStrategy:dc1", "replication", "not dc=replicas"},
		{"cassandra://h/ks?replication=NetworkTopologyStrategy:dc1=3,dc1=2", "replication", "given twice"},
		{"cassandra://h/ks?replication=NetworkTopologyStrategy:dc'1=3", "replication", "not a data center"},
		{"cassandra://h/ks?replication=EverywhereStrategy:1", "replication", "unknown strategy"},
		{"cassandra://h/ks?timeout=soon", "timeout", "not a duration"},
		{"cassandra://h/ks?timeout=1ms", "timeout", "outside"},
		{"cassandra://h/ks?bucket=30s", "bucket", "outside"},
		{"cassandra://h/ks?bucket=1h0.5ms", "bucket", "whole milliseconds"},
		{"cassandra://h/ks?keyspace=other", "keyspace", "unknown cassandra:// option"},
		{"cassandra://:pw@h/ks", "url", "needs a user name"},
		{"cassandra://h/ks?%zz", "url", "query string"},
	} {
		_, err := ParseURL(tc.url)
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want invalid_argument on %q saying %q", tc.url, err, tc.field, tc.says)
		}
	}
	// The password never shows.
	_, err := ParseURL("cassandra://u:hunter2@h/ks?timeout=x")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v shows the password", err)
	}
}

func TestSatisfiable(t *testing.T) {
	dcs := map[string]int{"dc1": 3, "dc2": 1}
	for _, tc := range []struct {
		r    Replication
		ok   bool
		says string
	}{
		{Replication{Class: simpleStrategy, Factor: 4}, true, ""},
		{Replication{Class: simpleStrategy, Factor: 5}, false, "needs 5 replicas but the cluster has 4 node(s) (dc1: 3, dc2: 1)"},
		{Replication{Class: networkStrategy, DCs: map[string]int{"dc1": 3, "dc2": 1}}, true, ""},
		{Replication{Class: networkStrategy, DCs: map[string]int{"dc1": 3, "dc2": 3}}, false, "needs 3 replicas in data center dc2 but it has 1 node(s)"},
		{Replication{Class: networkStrategy, DCs: map[string]int{"dc3": 1}}, false, "data center dc3 but it has 0 node(s)"},
	} {
		err := satisfiable(tc.r, dcs, "")
		if tc.ok != (err == nil) || err != nil && (!greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), tc.says)) {
			t.Errorf("%s: %v", tc.r, err)
		}
	}
}

func TestBuckets(t *testing.T) {
	// Ids of one UTC day share a bucket; the bucket order is the id order.
	day := int64(86400000)
	a, _ := bucketOf("0193a5c4-0000-7000-8000-000000000000", day)
	b, _ := bucketOf("0193a5c4-ffff-7fff-bfff-ffffffffffff", day)
	if a != b {
		t.Errorf("ids a millisecond apart in buckets %d and %d", a, b)
	}
	if _, ok := bucketOf("0193a5c4-0000-4000-8000-000000000000", day); ok {
		t.Error("a UUIDv4 has a bucket")
	}
	if floorDiv(-1, 10) != -1 || floorDiv(-10, 10) != -1 || floorDiv(9, 10) != 0 {
		t.Error("floorDiv")
	}
}

// FuzzParseURL: any string either parses into a usable configuration or
// is refused with InvalidArgument; it never panics, and the password
// never appears in an error.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"cassandra://127.0.0.1:19042",
		"cassandra://u:p@h1:9042/ks?hosts=h2:9042,h3&consistency=local_quorum&read_consistency=one",
		"cassandra://h/ks?replication=NetworkTopologyStrategy:dc1=3,dc2=3&local_dc=dc1&timeout=5s&bucket=1h",
		"cassandra://h/ks?replication=SimpleStrategy:1&serial_consistency=serial",
		"cassandra://[::1]:9042/ks?hosts=[fd00::1]:9042",
		"cassandra://h/ks?hosts=a,,b",
		"cassandra:opaque",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			if !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("%q: %v is not invalid_argument", s, err)
			}
			return
		}
		if len(c.Hosts) == 0 || c.Keyspace == "" || c.Timeout <= 0 || c.ConnectTimeout <= 0 || c.Bucket < time.Minute {
			t.Fatalf("%q parsed into an unusable %+v", s, c)
		}
		if !keyspaceRE.MatchString(c.Keyspace) {
			t.Fatalf("%q: keyspace %q", s, c.Keyspace)
		}
		for _, h := range c.Hosts {
			if _, err := parseHost(h); err != nil {
				t.Fatalf("%q: host %q does not parse again: %v", s, h, err)
			}
		}
		if c.Replication.Class != "" {
			r, err := parseReplication(c.Replication.String())
			if err != nil || r.String() != c.Replication.String() {
				t.Fatalf("%q: replication %s does not round-trip: %v", s, c.Replication, err)
			}
		}
	})
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code greyerr.Code
		says string
	}{
		{&gocql.RequestErrUnavailable{Consistency: gocql.LocalQuorum, Required: 2, Alive: 1}, greyerr.Unavailable, "LOCAL_QUORUM needs 2 live replicas, 1 are alive"},
		{&gocql.RequestErrWriteTimeout{WriteType: "CAS"}, greyerr.Unavailable, ""},
		{&gocql.RequestErrReadTimeout{}, greyerr.Unavailable, ""},
		{&gocql.RequestErrOverloaded{}, greyerr.Unavailable, ""},
		{&gocql.RequestErrCredentials{}, greyerr.PermissionDenied, ""},
		{&gocql.RequestErrUnauthorized{}, greyerr.PermissionDenied, ""},
		{gocql.ErrNoConnections, greyerr.Unavailable, ""},
		{gocql.ErrTimeoutNoResponse, greyerr.Unavailable, ""},
		{errors.New("gocql: unable to create session: unable to discover protocol version: dial tcp 127.0.0.1:1: connect: connection refused"), greyerr.Unavailable, ""},
		{context.Canceled, greyerr.Canceled, ""},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), greyerr.DeadlineExceeded, ""},
		{errors.New("something else"), greyerr.Internal, ""},
	} {
		err := classify(tc.err, "op")
		if !greyerr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.says) || !errors.Is(err, tc.err) {
			t.Errorf("%T %v: got %v, want %s saying %q wrapping the cause", tc.err, tc.err, err, tc.code, tc.says)
		}
	}
	if !unknownOutcome(&gocql.RequestErrWriteTimeout{WriteType: "CAS"}) || !unknownOutcome(&gocql.RequestErrCASWriteUnknown{}) || unknownOutcome(&gocql.RequestErrInvalid{}) {
		t.Error("unknownOutcome")
	}
}
