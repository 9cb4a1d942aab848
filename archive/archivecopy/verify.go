package archivecopy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/proof"
)

// VerifyParallelism is how many tenants Verify compares at once.
const VerifyParallelism = 4

// VerifyOptions select what Verify compares.
type VerifyOptions struct {
	// Tenant compares only this tenant ("" : every tenant either side
	// holds).
	Tenant string
	// Since compares only records finished at or after it (zero: all).
	Since time.Time
	// MaxIDs bounds the ids named per tenant and kind of difference
	// (0: 100; negative: no bound).
	MaxIDs int
	// Batch is the records read per call (0: archive.MaxLimit).
	Batch int
}

// Digest is an order-independent digest of a set of records: the sum,
// modulo 2^256, of the SHA-256 of each record's canonical encoding
// (RecordHash). Adding records in any order gives the same digest.
type Digest [sha256.Size]byte

// Add adds the hash of one record.
func (d *Digest) Add(h [sha256.Size]byte) {
	carry := 0
	for i := len(d) - 1; i >= 0; i-- {
		s := int(d[i]) + int(h[i]) + carry
		d[i] = byte(s)
		carry = s >> 8
	}
}

// String is the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// RecordHash returns the SHA-256 of r's canonical encoding: the record as
// JSON (times in UTC) with its JSON documents (the task's payload and
// result, the proof envelope) in RFC 8785 canonical form, so that a store
// that reorders JSON object keys or rewrites numbers and escapes
// (PostgreSQL jsonb) hashes a record as the store it came from did. The
// rest of the record is Go structs, whose encoding is already canonical
// (fields in declaration order, maps sorted by key).
func RecordHash(r archive.Record) ([sha256.Size]byte, error) {
	canon := func(what string, b []byte) ([]byte, error) {
		if len(b) == 0 {
			return b, nil
		}
		c, err := proof.Canonicalize(b)
		if err != nil {
			return nil, fmt.Errorf("canonical form of the %s: %w", what, err)
		}
		return c, nil
	}
	var err error
	if r.Proof, err = canon("proof", r.Proof); err != nil {
		return [sha256.Size]byte{}, err
	}
	if r.Task != nil {
		t := *r.Task
		utc := func(p **time.Time) {
			if *p != nil {
				v := (**p).UTC()
				*p = &v
			}
		}
		t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
		utc(&t.StartedAt)
		utc(&t.FinishedAt)
		utc(&t.NextAttemptAt)
		utc(&t.RunAt)
		if t.Payload, err = canon("payload", t.Payload); err != nil {
			return [sha256.Size]byte{}, err
		}
		if t.Result, err = canon("result", t.Result); err != nil {
			return [sha256.Size]byte{}, err
		}
		r.Task = &t
	}
	b, err := json.Marshal(r)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("encode record: %w", err)
	}
	return sha256.Sum256(b), nil
}

// TenantReport is one tenant's comparison.
type TenantReport struct {
	// Tenant is the tenant's id.
	Tenant string `json:"tenant"`
	// FromCount and ToCount are the records on each side.
	FromCount int64 `json:"from_count"`
	ToCount   int64 `json:"to_count"`
	// FromDigest and ToDigest are each side's Digest.
	FromDigest Digest `json:"from_digest"`
	ToDigest   Digest `json:"to_digest"`
	// Missing are ids only the source holds, Extra ids only the target
	// holds, Differ ids both hold with different content (each bounded by
	// VerifyOptions.MaxIDs; the counts are not).
	Missing []string `json:"missing,omitempty"`
	Extra   []string `json:"extra,omitempty"`
	Differ  []string `json:"differ,omitempty"`
	// MissingCount, ExtraCount and DifferCount count them all.
	MissingCount int64 `json:"missing_count"`
	ExtraCount   int64 `json:"extra_count"`
	DifferCount  int64 `json:"differ_count"`
	// Same are the ids both sides hold with equal content, when asked for
	// (rebalance deletes exactly these from the old shard).
	Same []string `json:"-"`
}

// Equal reports whether both sides hold the same records.
func (r TenantReport) Equal() bool {
	return r.FromCount == r.ToCount && r.FromDigest == r.ToDigest && r.MissingCount+r.ExtraCount+r.DifferCount == 0
}

// Report is the result of Verify.
type Report struct {
	// Tenants are every tenant compared, sorted.
	Tenants []TenantReport `json:"tenants"`
	// FromDigest and ToDigest sum every tenant's.
	FromDigest Digest `json:"from_digest"`
	ToDigest   Digest `json:"to_digest"`
	// FromCount and ToCount are the records of each side.
	FromCount int64 `json:"from_count"`
	ToCount   int64 `json:"to_count"`
}

// Equal reports whether every tenant is equal.
func (r Report) Equal() bool {
	for _, t := range r.Tenants {
		if !t.Equal() {
			return false
		}
	}
	return true
}

// Differences returns one line per tenant that differs, naming the ids.
func (r Report) Differences() []string {
	var out []string
	for _, t := range r.Tenants {
		if t.Equal() {
			continue
		}
		line := fmt.Sprintf("tenant %s: %d records in the source, %d in the target", t.Tenant, t.FromCount, t.ToCount)
		add := func(what string, n int64, ids []string) {
			if n > 0 {
				line += fmt.Sprintf("; %s (%d): %s", what, n, strings.Join(ids, ", "))
				if int64(len(ids)) < n {
					line += ", ..."
				}
			}
		}
		add("missing from the target", t.MissingCount, t.Missing)
		add("only in the target", t.ExtraCount, t.Extra)
		add("different content", t.DifferCount, t.Differ)
		out = append(out, line)
	}
	return out
}

// Verify compares the records opts selects on both stores, tenant by
// tenant, by a merge walk of both sides in id order: counts, digests and
// the ids that differ.
func Verify(ctx context.Context, from, to *archive.Store, opts VerifyOptions) (Report, error) {
	return verify(ctx, from, to, opts, false)
}

func verify(ctx context.Context, from, to *archive.Store, opts VerifyOptions, keepSame bool) (Report, error) {
	var rep Report
	var ts []string
	if opts.Tenant != "" {
		ts = []string{opts.Tenant}
	} else {
		a, err := tenants(ctx, from, "")
		if err != nil {
			return rep, fmt.Errorf("source: %w", err)
		}
		b, err := tenants(ctx, to, "")
		if err != nil {
			return rep, fmt.Errorf("target: %w", err)
		}
		ts = sortedUnion(a, b)
	}
	// Tenants are compared VerifyParallelism at a time (hashing is the
	// cost), reported in order.
	trs := make([]TenantReport, len(ts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(VerifyParallelism)
	for i, t := range ts {
		g.Go(func() (err error) {
			trs[i], err = verifyTenant(gctx, from, to, t, opts, keepSame)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return rep, err
	}
	for _, tr := range trs {
		rep.Tenants = append(rep.Tenants, tr)
		rep.FromCount += tr.FromCount
		rep.ToCount += tr.ToCount
		rep.FromDigest.Add(tr.FromDigest)
		rep.ToDigest.Add(tr.ToDigest)
	}
	return rep, nil
}

// side reads one store's records of a tenant in id descending order, a
// page at a time.
type side struct {
	s      *archive.Store
	tenant string
	f      archive.Filter
	batch  int
	page   []archive.Record
	before string
	done   bool
}

// peek returns the next record, reading a page when needed; ok is false
// at the end.
func (s *side) peek(ctx context.Context) (archive.Record, bool, error) {
	if len(s.page) == 0 && !s.done {
		p, err := s.s.ListBefore(ctx, s.tenant, s.f, s.before, s.batch)
		if err != nil {
			return archive.Record{}, false, err
		}
		s.page = p
		if len(p) < s.batch {
			s.done = true
		}
		if len(p) > 0 {
			s.before = p[len(p)-1].Task.ID
		}
	}
	if len(s.page) == 0 {
		return archive.Record{}, false, nil
	}
	return s.page[0], true, nil
}

func (s *side) next() { s.page = s.page[1:] }

func verifyTenant(ctx context.Context, from, to *archive.Store, tenant string, opts VerifyOptions, keepSame bool) (TenantReport, error) {
	batch := opts.Batch
	if batch <= 0 || batch > archive.MaxLimit {
		batch = archive.MaxLimit
	}
	maxIDs := opts.MaxIDs
	if maxIDs == 0 {
		maxIDs = 100
	}
	note := func(ids *[]string, n *int64, id string) {
		*n++
		if maxIDs < 0 || len(*ids) < maxIDs {
			*ids = append(*ids, id)
		}
	}
	f := archive.Filter{FinishedFrom: opts.Since}
	a := &side{s: from, tenant: tenant, f: f, batch: batch}
	b := &side{s: to, tenant: tenant, f: f, batch: batch}
	tr := TenantReport{Tenant: tenant}
	hash := func(r archive.Record) ([sha256.Size]byte, error) {
		h, err := RecordHash(r)
		if err != nil {
			return h, fmt.Errorf("tenant %s task %s: %w", tenant, r.Task.ID, err)
		}
		return h, nil
	}
	for {
		ra, oka, err := a.peek(ctx)
		if err != nil {
			return tr, fmt.Errorf("read the source's tenant %s: %w", tenant, err)
		}
		rb, okb, err := b.peek(ctx)
		if err != nil {
			return tr, fmt.Errorf("read the target's tenant %s: %w", tenant, err)
		}
		switch {
		case !oka && !okb:
			return tr, nil
		case oka && (!okb || ra.Task.ID > rb.Task.ID): // ids descend: a is ahead
			h, err := hash(ra)
			if err != nil {
				return tr, err
			}
			tr.FromCount++
			tr.FromDigest.Add(h)
			note(&tr.Missing, &tr.MissingCount, ra.Task.ID)
			a.next()
		case okb && (!oka || rb.Task.ID > ra.Task.ID):
			h, err := hash(rb)
			if err != nil {
				return tr, err
			}
			tr.ToCount++
			tr.ToDigest.Add(h)
			note(&tr.Extra, &tr.ExtraCount, rb.Task.ID)
			b.next()
		default:
			ha, err := hash(ra)
			if err != nil {
				return tr, err
			}
			hb, err := hash(rb)
			if err != nil {
				return tr, err
			}
			tr.FromCount++
			tr.ToCount++
			tr.FromDigest.Add(ha)
			tr.ToDigest.Add(hb)
			if ha != hb {
				note(&tr.Differ, &tr.DifferCount, ra.Task.ID)
			} else if keepSame {
				tr.Same = append(tr.Same, ra.Task.ID)
			}
			a.next()
			b.next()
		}
	}
}

// VerifyTenantSame compares one tenant on both stores like Verify and also
// returns, in TenantReport.Same, the ids both hold with equal content.
func VerifyTenantSame(ctx context.Context, from, to *archive.Store, tenant string, since time.Time) (TenantReport, error) {
	rep, err := verify(ctx, from, to, VerifyOptions{Tenant: tenant, Since: since, MaxIDs: -1}, true)
	if err != nil {
		return TenantReport{}, err
	}
	return rep.Tenants[0], nil
}
