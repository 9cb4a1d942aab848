package cassarchive

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of Cassandra archives.
const Scheme = "cassandra"

// Defaults of the URL's knobs.
const (
	// DefaultPort is the CQL native transport port a host without one uses.
	DefaultPort = 9042
	// DefaultKeyspace is the keyspace of a URL without a path.
	DefaultKeyspace = "grey"
	// DefaultTimeout bounds one request (timeout=).
	DefaultTimeout = 10 * time.Second
	// DefaultConnectTimeout bounds dialing a host and the connection's
	// setup (connect_timeout=).
	DefaultConnectTimeout = 5 * time.Second
	// DefaultBucket is the width of a tenant's id-time bucket (bucket=),
	// chosen when the keyspace is made.
	DefaultBucket = 24 * time.Hour
	// DefaultNumConns is the connections per host when OpenOptions.PoolSize
	// is 0.
	DefaultNumConns = 2
)

// Replication is a keyspace's replication strategy.
type Replication struct {
	// Class is SimpleStrategy or NetworkTopologyStrategy; "" means the
	// default: SimpleStrategy with min(3, nodes in the cluster) replicas,
	// settled when the keyspace is made.
	Class string
	// Factor is SimpleStrategy's replication factor.
	Factor int
	// DCs are NetworkTopologyStrategy's replicas per data center.
	DCs map[string]int
}

// String returns the replication as the URL writes it.
func (r Replication) String() string {
	switch r.Class {
	case "":
		return "default"
	case simpleStrategy:
		return fmt.Sprintf("%s:%d", r.Class, r.Factor)
	}
	dcs := make([]string, 0, len(r.DCs))
	for dc := range r.DCs {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	parts := make([]string, len(dcs))
	for i, dc := range dcs {
		parts[i] = fmt.Sprintf("%s=%d", dc, r.DCs[dc])
	}
	return r.Class + ":" + strings.Join(parts, ",")
}

// cql returns the replication map of CREATE KEYSPACE.
func (r Replication) cql() string {
	if r.Class == simpleStrategy {
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", r.Factor)
	}
	dcs := make([]string, 0, len(r.DCs))
	for dc := range r.DCs {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	parts := []string{"'class': 'NetworkTopologyStrategy'"}
	for _, dc := range dcs {
		parts = append(parts, fmt.Sprintf("'%s': %d", dc, r.DCs[dc]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

const (
	simpleStrategy  = "SimpleStrategy"
	networkStrategy = "NetworkTopologyStrategy"
)

// Config is a parsed cassandra:// URL.
type Config struct {
	// Hosts are the contact points, host:port each.
	Hosts []string
	// Keyspace holds the archive's tables.
	Keyspace string
	// Username and Password authenticate (PasswordAuthenticator) when
	// Username is set.
	Username, Password string
	// ReadConsistency is the level of Get, List, Count and Tenants.
	ReadConsistency gocql.Consistency
	// WriteConsistency is the level of Upsert, Delete and DeleteBefore.
	WriteConsistency gocql.Consistency
	// SerialConsistency is the level of the lightweight transactions'
	// Paxos phase (SERIAL or LOCAL_SERIAL).
	SerialConsistency gocql.Consistency
	// LocalDC makes the host policy DC-aware: requests go to this data
	// center's replicas.
	LocalDC string
	// Replication is the keyspace's replication, used when the migration
	// makes it.
	Replication Replication
	// Timeout bounds one request; ConnectTimeout bounds a connection's
	// setup.
	Timeout, ConnectTimeout time.Duration
	// Bucket is the width of the id-time buckets, used when the migration
	// makes the keyspace (the keyspace keeps it).
	Bucket time.Duration
}

var keyspaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// dcRE bounds a data center's name to what can be quoted safely in CQL.
var dcRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// knownKnobs are the query parameters ParseURL takes.
var knownKnobs = []string{"hosts", "consistency", "read_consistency", "write_consistency", "serial_consistency",
	"local_dc", "replication", "timeout", "connect_timeout", "bucket"}

// ParseURL parses a cassandra:// URL:
//
//	cassandra://[user:pass@]host1[:9042]/KEYSPACE?hosts=host2:9042,host3&consistency=local_quorum
//	    &read_consistency=..&write_consistency=..&serial_consistency=local_serial&local_dc=dc1
//	    &replication=SimpleStrategy:1|NetworkTopologyStrategy:dc1=3,dc2=3&timeout=10s
//	    &connect_timeout=5s&bucket=24h
//
// Every mistake is InvalidArgument naming the knob (field "url", "hosts",
// "keyspace", "consistency", ...) and the bad value; the message never
// carries the password.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, greyerr.Invalid("url", "not a URL (the cassandra:// form is cassandra://host:9042/keyspace)")
	}
	if u.Scheme != Scheme {
		return Config{}, greyerr.Invalid("url", "scheme %q is not %s", u.Scheme, Scheme)
	}
	if u.Opaque != "" {
		return Config{}, greyerr.Invalid("url", "write cassandra://host/keyspace, with two slashes")
	}
	c := Config{
		Keyspace:          DefaultKeyspace,
		ReadConsistency:   gocql.LocalQuorum,
		WriteConsistency:  gocql.LocalQuorum,
		SerialConsistency: gocql.LocalSerial,
		Timeout:           DefaultTimeout,
		ConnectTimeout:    DefaultConnectTimeout,
		Bucket:            DefaultBucket,
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
		if c.Username == "" {
			return Config{}, greyerr.Invalid("url", "a password needs a user name (cassandra://user:password@host/keyspace)")
		}
	}
	var entries []string
	if u.Host != "" {
		entries = append(entries, u.Host)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, greyerr.Invalid("url", "the query string does not parse: %v", err)
	}
	for k := range q {
		if !slices.Contains(knownKnobs, k) {
			return Config{}, greyerr.Invalid(k, "unknown cassandra:// option %q (known: %s)", k, strings.Join(knownKnobs, ", "))
		}
	}
	for _, v := range q["hosts"] {
		entries = append(entries, strings.Split(v, ",")...)
	}
	for i, e := range entries {
		h, err := parseHost(e)
		if err != nil {
			return Config{}, greyerr.Invalid("hosts", "entry %d %q: %s", i+1, e, err)
		}
		if !slices.Contains(c.Hosts, h) {
			c.Hosts = append(c.Hosts, h)
		}
	}
	if len(c.Hosts) == 0 {
		return Config{}, greyerr.Invalid("hosts", "a Cassandra archive needs at least one contact point (cassandra://host:9042/keyspace or hosts=)")
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if !keyspaceRE.MatchString(p) {
			return Config{}, greyerr.Invalid("keyspace", "%q is not a keyspace name (a letter, then up to 47 letters, digits or _)", p)
		}
		c.Keyspace = strings.ToLower(p)
	}
	one := func(k string) (string, bool, error) {
		vs, ok := q[k]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 {
			return "", false, greyerr.Invalid(k, "given %d times", len(vs))
		}
		return vs[0], true, nil
	}
	if v, ok, err := one("consistency"); err != nil {
		return Config{}, err
	} else if ok {
		cl, err := parseConsistency("consistency", v, true)
		if err != nil {
			return Config{}, err
		}
		c.WriteConsistency = cl
		if cl == gocql.Any || cl == gocql.EachQuorum {
			// Not a read level: reads take the nearest one that is.
			c.ReadConsistency = map[gocql.Consistency]gocql.Consistency{gocql.Any: gocql.One, gocql.EachQuorum: gocql.LocalQuorum}[cl]
		} else {
			c.ReadConsistency = cl
		}
	}
	if v, ok, err := one("read_consistency"); err != nil {
		return Config{}, err
	} else if ok {
		if c.ReadConsistency, err = parseConsistency("read_consistency", v, false); err != nil {
			return Config{}, err
		}
	}
	if v, ok, err := one("write_consistency"); err != nil {
		return Config{}, err
	} else if ok {
		if c.WriteConsistency, err = parseConsistency("write_consistency", v, true); err != nil {
			return Config{}, err
		}
	}
	if v, ok, err := one("serial_consistency"); err != nil {
		return Config{}, err
	} else if ok {
		switch strings.ToLower(v) {
		case "serial":
			c.SerialConsistency = gocql.Serial
		case "local_serial":
			c.SerialConsistency = gocql.LocalSerial
		default:
			return Config{}, greyerr.Invalid("serial_consistency", "%q is not serial or local_serial", v)
		}
	}
	if v, ok, err := one("local_dc"); err != nil {
		return Config{}, err
	} else if ok {
		if !dcRE.MatchString(v) {
			return Config{}, greyerr.Invalid("local_dc", "%q is not a data center name", v)
		}
		c.LocalDC = v
	}
	if v, ok, err := one("replication"); err != nil {
		return Config{}, err
	} else if ok {
		if c.Replication, err = parseReplication(v); err != nil {
			return Config{}, err
		}
	}
	for _, d := range []struct {
		knob     string
		to       *time.Duration
		min, max time.Duration
	}{
		{"timeout", &c.Timeout, 10 * time.Millisecond, 10 * time.Minute},
		{"connect_timeout", &c.ConnectTimeout, 10 * time.Millisecond, 10 * time.Minute},
		{"bucket", &c.Bucket, time.Minute, 365 * 24 * time.Hour},
	} {
		v, ok, err := one(d.knob)
		if err != nil {
			return Config{}, err
		}
		if !ok {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, greyerr.Invalid(d.knob, "%q is not a duration (e.g. 10s)", v)
		}
		if dur < d.min || dur > d.max {
			return Config{}, greyerr.Invalid(d.knob, "%s is outside %s..%s", dur, d.min, d.max)
		}
		if d.knob == "bucket" && dur%time.Millisecond != 0 {
			return Config{}, greyerr.Invalid(d.knob, "%s is not whole milliseconds", dur)
		}
		*d.to = dur
	}
	return c, nil
}

// parseHost checks one contact point and returns it as host:port.
func parseHost(e string) (string, error) {
	e = strings.TrimSpace(e)
	if e == "" {
		return "", fmt.Errorf("empty (a stray comma?)")
	}
	host, port := e, strconv.Itoa(DefaultPort)
	if h, p, err := net.SplitHostPort(e); err == nil {
		host, port = h, p
	} else if strings.Count(e, ":") > 1 && net.ParseIP(e) == nil {
		return "", fmt.Errorf("not host[:port] (an IPv6 address with a port goes in brackets: [::1]:9042)")
	} else if strings.Contains(e, ":") && net.ParseIP(e) == nil {
		return "", fmt.Errorf("not host[:port]: %v", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if host == "" {
		return "", fmt.Errorf("no host name")
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return "", fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

var consistencies = map[string]gocql.Consistency{
	"any": gocql.Any, "one": gocql.One, "two": gocql.Two, "three": gocql.Three,
	"quorum": gocql.Quorum, "all": gocql.All, "local_quorum": gocql.LocalQuorum,
	"each_quorum": gocql.EachQuorum, "local_one": gocql.LocalOne,
}

func parseConsistency(knob, v string, write bool) (gocql.Consistency, error) {
	cl, ok := consistencies[strings.ToLower(v)]
	if !ok {
		return 0, greyerr.Invalid(knob, "%q is not a consistency level (any, one, two, three, quorum, all, local_quorum, each_quorum, local_one)", v)
	}
	if !write && (cl == gocql.Any || cl == gocql.EachQuorum) {
		return 0, greyerr.Invalid(knob, "%s is a write level: Cassandra does not read at it", strings.ToLower(v))
	}
	return cl, nil
}

// parseReplication parses SimpleStrategy:N or
// NetworkTopologyStrategy:dc1=N,dc2=M.
func parseReplication(v string) (Replication, error) {
	class, rest, ok := strings.Cut(v, ":")
	bad := func(format string, args ...any) (Replication, error) {
		return Replication{}, greyerr.Invalid("replication", "%q: "+format+" (write SimpleStrategy:3 or NetworkTopologyStrategy:dc1=3,dc2=3)", append([]any{v}, args...)...)
	}
	if !ok || rest == "" {
		return bad("no replicas given")
	}
	factor := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 1 && n <= 100
	}
	switch strings.ToLower(class) {
	case "simplestrategy", "simple":
		n, ok := factor(rest)
		if !ok {
			return bad("replication factor %q is not a number from 1 to 100", rest)
		}
		return Replication{Class: simpleStrategy, Factor: n}, nil
	case "networktopologystrategy", "networktopology":
		r := Replication{Class: networkStrategy, DCs: map[string]int{}}
		for _, part := range strings.Split(rest, ",") {
			dc, ns, ok := strings.Cut(part, "=")
			if !ok {
				return bad("%q is not dc=replicas", part)
			}
			if !dcRE.MatchString(dc) {
				return bad("%q is not a data center name", dc)
			}
			if _, dup := r.DCs[dc]; dup {
				return bad("data center %s given twice", dc)
			}
			n, ok := factor(ns)
			if !ok {
				return bad("replicas %q of %s is not a number from 1 to 100", ns, dc)
			}
			r.DCs[dc] = n
		}
		return r, nil
	}
	return bad("unknown strategy %q", class)
}
