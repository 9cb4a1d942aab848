package quorumarchive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of quorum archives.
const Scheme = "quorum"

// Level is a quorum level: how many replicas must answer.
type Level int

// Quorum levels.
const (
	// One replica.
	One Level = iota + 1
	// Majority of the replicas (N/2+1).
	Majority
	// All the replicas.
	All
)

// String returns the level as the URL and the configuration spell it.
func (l Level) String() string {
	switch l {
	case One:
		return "one"
	case Majority:
		return "majority"
	case All:
		return "all"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel parses one, majority or all ("" is majority, the seed's
// default).
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(s) {
	case "one":
		return One, nil
	case "majority", "":
		return Majority, nil
	case "all":
		return All, nil
	}
	return 0, fmt.Errorf("%q is not a quorum level (one, majority, all)", s)
}

// of returns how many of n replicas the level needs.
func (l Level) of(n int) int {
	switch l {
	case One:
		return 1
	case All:
		return n
	}
	return n/2 + 1
}

// Defaults of Config.
const (
	// DefaultLinger bounds how long a replica's call may go on after the
	// quorum answered (the call that completes a write to a slow replica).
	DefaultLinger = 30 * time.Second
	// DefaultWriteGrace is how long a write waits for the replicas that
	// had not answered when the write quorum was reached (or lost).
	DefaultWriteGrace = time.Second
	// DefaultRepairQueue bounds the read repairs waiting to run.
	DefaultRepairQueue = 1024
	// DefaultPageSize is the page anti-entropy reads per replica.
	DefaultPageSize = 500
	// downPause is how long a replica that failed as unreachable counts
	// as down: a write whose quorum is all pings it before writing, and
	// repairs wait for it.
	downPause = 2 * time.Second
	// maxTombstones bounds the deletes remembered for anti-entropy.
	maxTombstones = 100_000
	// maxDirty bounds the records remembered as missed by a replica;
	// past it the next anti-entropy pass is a full one.
	maxDirty = 100_000
	// DefaultFullEvery is how often an anti-entropy pass compares every
	// record instead of only those a replica is known to have missed.
	DefaultFullEvery = 24 * time.Hour
	// MaxReplicas bounds the replicas of one archive.
	MaxReplicas = 15
)

// Config configures a Driver.
type Config struct {
	// Write is the write quorum (0: Majority).
	Write Level
	// Read is the read quorum (0: Majority).
	Read Level
	// AntiEntropy is the period of the background anti-entropy pass (0:
	// none; Driver.AntiEntropy still runs one).
	AntiEntropy time.Duration
	// FullEvery is how often a pass compares every record of every
	// replica (0: DefaultFullEvery; negative: every pass). The passes in
	// between check only the records some replica is known to have
	// missed since the last full pass that every replica took part in:
	// writes that a replica failed or did not answer. A driver's first
	// pass is always full (what it missed before it started is unknown),
	// and so is the pass after more than 100,000 such records.
	FullEvery time.Duration
	// Retention is the archive's retention (OpenOptions.Retention): repair
	// never copies a record that finished before now - Retention (0:
	// forever).
	Retention time.Duration
	// Linger bounds a replica's call after the caller got its answer (0:
	// DefaultLinger).
	Linger time.Duration
	// WriteGrace is how long a write waits, once its quorum answered, for
	// the other replicas (0: DefaultWriteGrace; negative: not at all).
	// Within it a write reaches every replica that answers before it
	// returns, so that a read that follows sees it on all of them.
	WriteGrace time.Duration
	// RepairQueue bounds the pending read repairs (0: DefaultRepairQueue).
	RepairQueue int
	// PageSize is the page of anti-entropy (0: DefaultPageSize).
	PageSize int
	// Logger receives the driver's log lines (nil: discarded).
	Logger *slog.Logger
}

// Replica is one child archive of a quorum.
type Replica struct {
	// Name names the replica in errors, logs and metrics (the redacted URL
	// without its query when opened from a URL).
	Name string
	// Driver is the child archive.
	Driver archive.Driver
}

// replica is a Replica and what is known of its health.
type replica struct {
	Replica
	i         int
	downUntil atomic.Int64 // unix nanos: reads skip it until then
}

func (r *replica) label() string { return fmt.Sprintf("replica %d (%s)", r.i+1, r.Name) }

// Driver is the quorum archive. Create it with New or Open; it is safe for
// concurrent use.
type Driver struct {
	reps []*replica
	cfg  Config
	log  *slog.Logger
	m    atomic.Pointer[metrics]

	repairs chan repairJob
	stop    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
	closed  atomic.Bool

	passMu sync.Mutex // one anti-entropy pass at a time

	tombMu    sync.Mutex
	tombs     map[tombKey]struct{}
	tombOrder []tombKey

	// dirty holds the records some replica missed (see Config.FullEvery),
	// each with the generation that marked it last; overflow says that
	// more were missed than it holds; lastFull is when the last full pass
	// that every replica took part in started. Under dirtyMu.
	dirtyMu  sync.Mutex
	dirty    map[tombKey]uint64
	dirtyGen uint64
	overflow bool
	lastFull time.Time
}

var (
	_ archive.Driver       = (*Driver)(nil)
	_ archive.TenantLister = (*Driver)(nil)
	_ archive.Deleter      = (*Driver)(nil)
)

// New returns a quorum archive over replicas (at least one, at most
// MaxReplicas). It starts the read-repair workers and, when
// cfg.AntiEntropy > 0, the anti-entropy loop; Close stops them and closes
// the replicas.
func New(replicas []Replica, cfg Config) (*Driver, error) {
	if len(replicas) == 0 {
		return nil, greyerr.Invalid("replica", "a quorum archive needs at least one replica")
	}
	if len(replicas) > MaxReplicas {
		return nil, greyerr.Invalid("replica", "%d replicas: at most %d", len(replicas), MaxReplicas)
	}
	if cfg.Write == 0 {
		cfg.Write = Majority
	}
	if cfg.Read == 0 {
		cfg.Read = Majority
	}
	for _, l := range []Level{cfg.Write, cfg.Read} {
		if l < One || l > All {
			return nil, greyerr.Invalid("write", "%s is not a quorum level", l)
		}
	}
	if cfg.AntiEntropy < 0 {
		return nil, greyerr.Invalid("anti_entropy", "is negative")
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.WriteGrace == 0 {
		cfg.WriteGrace = DefaultWriteGrace
	}
	if cfg.RepairQueue <= 0 {
		cfg.RepairQueue = DefaultRepairQueue
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.FullEvery == 0 {
		cfg.FullEvery = DefaultFullEvery
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Driver{
		cfg:     cfg,
		log:     log,
		repairs: make(chan repairJob, cfg.RepairQueue),
		stop:    make(chan struct{}),
		tombs:   map[tombKey]struct{}{},
		dirty:   map[tombKey]uint64{},
	}
	for i, r := range replicas {
		if r.Driver == nil {
			return nil, greyerr.Invalid("replica", "replica %d has no driver", i+1)
		}
		if r.Name == "" {
			r.Name = fmt.Sprintf("replica-%d", i+1)
		}
		d.reps = append(d.reps, &replica{Replica: r, i: i})
	}
	d.m.Store(newMetrics(Scheme))
	const repairWorkers = 2
	for range repairWorkers {
		d.wg.Add(1)
		go d.repairLoop()
	}
	if cfg.AntiEntropy > 0 {
		d.wg.Add(1)
		go d.antiEntropyLoop(cfg.AntiEntropy)
	}
	return d, nil
}

// Register registers the quorum:// driver in r. Its replicas open through
// r (any scheme r knows, a quorum too), each with the parent's
// OpenOptions less ReadURLs and MigrateURL, which name one database; when
// MigrateURL is set, the replicas do not migrate when they open (one
// owner URL cannot serve N databases): migrate each on its own.
func Register(r *archive.Registry) error {
	return r.Register(Scheme, archive.OpenerFunc(func(ctx context.Context, u *url.URL, opts archive.OpenOptions) (archive.Driver, error) {
		return Open(ctx, r, u, opts)
	}))
}

// Settings are what a quorum:// URL says.
type Settings struct {
	// Replicas are the child archives' URLs, in the URL's order.
	Replicas []string
	// Config holds the levels and the anti-entropy period.
	Config Config
}

// ParseURL reads a quorum:// URL:
//
//	quorum://?replica=URL&replica=URL...&write=one|majority|all&read=...&anti_entropy=5m
//
// replica is query-escaped and repeated (at least one); write and read
// default to majority; anti_entropy is a Go duration (default 0: none).
// Any other key, a host or a path is InvalidArgument.
func ParseURL(u *url.URL) (Settings, error) {
	var s Settings
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.Opaque != "" {
		return s, greyerr.Invalid("url", "a quorum URL has no host, user or path: quorum://?replica=URL&replica=URL&write=majority&read=majority")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return s, greyerr.Invalid("url", "the quorum URL's query does not parse: %v", err)
	}
	for k, vs := range q {
		switch k {
		case "replica":
		case "write", "read", "anti_entropy", "anti_entropy_full":
			if len(vs) > 1 {
				return s, greyerr.Invalid(k, "is given %d times", len(vs))
			}
		default:
			return s, greyerr.Invalid(k, "is not a quorum URL parameter (replica, write, read, anti_entropy, anti_entropy_full)")
		}
	}
	for i, r := range q["replica"] {
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme == "" {
			return s, greyerr.Invalid("replica", "replica %d is not a URL with a scheme", i+1)
		}
		s.Replicas = append(s.Replicas, r)
	}
	if len(s.Replicas) == 0 {
		return s, greyerr.Invalid("replica", "a quorum URL needs at least one replica=URL")
	}
	if len(s.Replicas) > MaxReplicas {
		return s, greyerr.Invalid("replica", "%d replicas: at most %d", len(s.Replicas), MaxReplicas)
	}
	if s.Config.Write, err = ParseLevel(q.Get("write")); err != nil {
		return s, greyerr.Invalid("write", "%v", err)
	}
	if s.Config.Read, err = ParseLevel(q.Get("read")); err != nil {
		return s, greyerr.Invalid("read", "%v", err)
	}
	if v := q.Get("anti_entropy"); v != "" {
		p, err := time.ParseDuration(v)
		if err != nil || p < 0 {
			return s, greyerr.Invalid("anti_entropy", "%q is not a duration of 0 or more (5m, 1h)", v)
		}
		if p > 0 && p < time.Second {
			return s, greyerr.Invalid("anti_entropy", "%s is shorter than a second", p)
		}
		s.Config.AntiEntropy = p
	}
	if v := q.Get("anti_entropy_full"); v != "" {
		p, err := time.ParseDuration(v)
		if err != nil || p == 0 {
			return s, greyerr.Invalid("anti_entropy_full", "%q is not a duration such as 24h (negative: every pass is full)", v)
		}
		s.Config.FullEvery = p
	}
	return s, nil
}

// Open opens the quorum archive of u, its replicas through reg.
func Open(ctx context.Context, reg *archive.Registry, u *url.URL, opts archive.OpenOptions) (*Driver, error) {
	s, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	child := opts
	child.ReadURLs, child.MigrateURL = nil, ""
	if opts.MigrateURL != "" {
		// One owner URL cannot migrate N databases: each replica is
		// migrated on its own (greyd archive migrate with its URLs).
		child.Migrate = false
	}
	reps := make([]Replica, 0, len(s.Replicas))
	closeAll := func() {
		for _, r := range reps {
			_ = r.Driver.Close()
		}
	}
	for i, raw := range s.Replicas {
		drv, err := reg.OpenDriver(ctx, raw, child)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("replica %d (%s): %w", i+1, archive.Redact(raw), err)
		}
		reps = append(reps, Replica{Name: shortName(raw), Driver: drv})
	}
	cfg := s.Config
	cfg.Retention = opts.Retention
	cfg.Logger = opts.Logger
	d, err := New(reps, cfg)
	if err != nil {
		closeAll()
		return nil, err
	}
	if opts.Registerer != nil {
		if err := d.RegisterMetrics(opts.Registerer, cmp.Or(opts.Name, "default")); err != nil {
			_ = d.Close()
			return nil, err
		}
	}
	return d, nil
}

// shortName is a replica's URL without credentials and query.
func shortName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Replicas returns the replicas' names, in order.
func (d *Driver) Replicas() []string {
	out := make([]string, len(d.reps))
	for i, r := range d.reps {
		out[i] = r.Name
	}
	return out
}

// Capabilities implements archive.Driver: label filters when every replica
// has them, the smallest batch bound of the replicas, ReadReplicas the
// number of replicas.
func (d *Driver) Capabilities() archive.Capabilities {
	c := archive.Capabilities{Scheme: Scheme, LabelFilter: true, ReadReplicas: len(d.reps)}
	for _, r := range d.reps {
		rc := r.Driver.Capabilities()
		c.LabelFilter = c.LabelFilter && rc.LabelFilter
		if rc.MaxBatch > 0 && (c.MaxBatch == 0 || rc.MaxBatch < c.MaxBatch) {
			c.MaxBatch = rc.MaxBatch
		}
		c.PartitionedRetention = c.PartitionedRetention || rc.PartitionedRetention
	}
	return c
}

// As sets *i to d when i is a **Driver.
func (d *Driver) As(i any) bool {
	if p, ok := i.(**Driver); ok {
		*p = d
		return true
	}
	return false
}

// Close stops the background work and closes the replicas.
func (d *Driver) Close() error {
	var errs []error
	d.closing.Do(func() {
		d.closed.Store(true)
		close(d.stop)
		d.wg.Wait()
		for _, r := range d.reps {
			if err := r.Driver.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.label(), err))
			}
		}
	})
	return errors.Join(errs...)
}

// Ping implements archive.Driver: it succeeds when enough replicas answer
// for both quorums. A replica whose schema does not suit this binary
// (FailedPrecondition) fails it whatever the others say: it is a setup to
// fix, not an outage.
func (d *Driver) Ping(ctx context.Context) error {
	need := max(d.cfg.Write.of(len(d.reps)), d.cfg.Read.of(len(d.reps)))
	res, err := fanout(ctx, d, "ping", d.reps, need, okOnly, func(ctx context.Context, r *replica) (struct{}, error) {
		return struct{}{}, r.Driver.Ping(ctx)
	}, nil)
	for _, x := range res {
		if greyerr.CodeOf(x.err) == greyerr.FailedPrecondition {
			return &greyerr.Error{Code: greyerr.FailedPrecondition, Message: "quorum archive: " + x.r.label(), Err: x.err}
		}
	}
	return err
}
