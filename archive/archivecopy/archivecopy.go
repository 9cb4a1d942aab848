// Package archivecopy copies archive records between two archive.Stores of
// any schemes and verifies copies: per tenant or for every tenant (the
// source's Tenants), optionally only records finished since a time,
// batched, rate-limited, resumable from a checkpoint file, with a progress
// callback. Verify compares per-tenant counts and an order-independent
// digest of both sides and names the ids that differ. greyctl archive
// migrate and greyctl archive rebalance are built on it.
package archivecopy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// DefaultBatch is the records read and written per call when Options names
// no Batch.
const DefaultBatch = 500

// Options configure Copy.
type Options struct {
	// Tenant copies only this tenant ("" : every tenant the source holds).
	Tenant string
	// Since copies only records finished at or after it (zero: all).
	Since time.Time
	// Batch is the records per read and write (1 to archive.MaxLimit;
	// 0: DefaultBatch).
	Batch int
	// Rate bounds the records written per second (0: no bound).
	Rate float64
	// Checkpoint is a file recording how far the copy got, rewritten
	// atomically after every batch; a copy started with the checkpoint of
	// an interrupted one resumes after the last batch written ("" : none).
	// It is removed when the copy completes.
	Checkpoint string
	// Progress, when not nil, is called after every batch.
	Progress func(Progress)
}

// Progress is the state of a running copy.
type Progress struct {
	// Tenant is the tenant being copied.
	Tenant string `json:"tenant"`
	// TenantsDone of Tenants are finished.
	TenantsDone int `json:"tenants_done"`
	Tenants     int `json:"tenants"`
	// Records were copied by this run (not counting a resumed run's
	// earlier part).
	Records int64 `json:"records"`
	// Elapsed is the time since this run started.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Result is what Copy did.
type Result struct {
	// Tenants copied (including a resumed one).
	Tenants int `json:"tenants"`
	// Records written by this run.
	Records int64 `json:"records"`
	// Resumed reports that the run started from a checkpoint.
	Resumed bool `json:"resumed"`
	// Elapsed is this run's duration.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// RecordsPerSecond is the copy's rate.
func (r Result) RecordsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// checkpoint is the checkpoint file's content: the copy's selection (a
// checkpoint of another copy is refused) and the position reached.
type checkpoint struct {
	Version int       `json:"version"`
	Tenant  string    `json:"tenant_filter,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// At is the tenant being copied: every tenant before it (in sorted
	// order) is done.
	At string `json:"at"`
	// Before is the smallest id written of At: the copy goes on with the
	// ids below it ("" : At not started).
	Before string `json:"before,omitempty"`
}

func readCheckpoint(path string) (*checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil || c.Version != 1 {
		return nil, greyerr.Invalid("checkpoint", "%s is not a checkpoint of this version of greyctl archive migrate", path)
	}
	return &c, nil
}

// writeCheckpoint replaces path atomically: a new file, synced, renamed
// over the old one, so a crash leaves the old or the new one whole.
func writeCheckpoint(path string, c checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Tenants returns the tenants a copy or verify of opts covers on s: the
// one named, or all of s's.
func tenants(ctx context.Context, s *archive.Store, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	ts, err := s.Tenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the tenants: %w", err)
	}
	return ts, nil
}

// Copy copies the records opts selects from from to to, newest first per
// tenant, tenants in sorted order. Writes are upserts, so a copy run twice,
// or resumed from a checkpoint behind the last write, leaves one copy of
// each record. It returns ctx's error, with the checkpoint at the last
// batch written, when ctx ends.
func Copy(ctx context.Context, from, to *archive.Store, opts Options) (Result, error) {
	start := time.Now()
	batch := opts.Batch
	if batch == 0 {
		batch = DefaultBatch
	}
	if batch < 1 || batch > archive.MaxLimit {
		return Result{}, greyerr.Invalid("batch", "must be between 1 and %d", archive.MaxLimit)
	}
	if opts.Rate < 0 {
		return Result{}, greyerr.Invalid("rate", "must not be negative")
	}
	var lim *rate.Limiter
	if opts.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(opts.Rate), batch)
	}
	var res Result
	cp := checkpoint{Version: 1, Tenant: opts.Tenant, Since: opts.Since.UTC()}
	if opts.Checkpoint != "" {
		old, err := readCheckpoint(opts.Checkpoint)
		if err != nil {
			return res, err
		}
		if old != nil {
			if old.Tenant != cp.Tenant || !old.Since.Equal(cp.Since) {
				return res, greyerr.Invalid("checkpoint", "%s is the checkpoint of another copy (tenant %q, since %v): remove it or repeat that copy's options", opts.Checkpoint, old.Tenant, old.Since)
			}
			cp.At, cp.Before = old.At, old.Before
			res.Resumed = true
		}
	}
	ts, err := tenants(ctx, from, opts.Tenant)
	if err != nil {
		return res, err
	}
	f := archive.Filter{FinishedFrom: opts.Since}
	for n, t := range ts {
		if res.Resumed && t < cp.At {
			continue
		}
		before := ""
		if res.Resumed && t == cp.At {
			before = cp.Before
		}
		for {
			recs, err := from.ListBefore(ctx, t, f, before, batch)
			if err != nil {
				return res, fmt.Errorf("read tenant %s: %w", t, err)
			}
			if len(recs) == 0 {
				break
			}
			if lim != nil {
				if err := lim.WaitN(ctx, len(recs)); err != nil {
					return res, err
				}
			}
			if err := to.Upsert(ctx, recs); err != nil {
				return res, fmt.Errorf("write tenant %s: %w", t, err)
			}
			res.Records += int64(len(recs))
			before = recs[len(recs)-1].Task.ID
			if opts.Checkpoint != "" {
				cp.At, cp.Before = t, before
				if err := writeCheckpoint(opts.Checkpoint, cp); err != nil {
					return res, err
				}
			}
			if opts.Progress != nil {
				opts.Progress(Progress{Tenant: t, TenantsDone: n, Tenants: len(ts), Records: res.Records, Elapsed: time.Since(start)})
			}
			if len(recs) < batch {
				break
			}
		}
		res.Tenants++
		if opts.Progress != nil {
			opts.Progress(Progress{Tenant: t, TenantsDone: n + 1, Tenants: len(ts), Records: res.Records, Elapsed: time.Since(start)})
		}
	}
	res.Elapsed = time.Since(start)
	if opts.Checkpoint != "" {
		if err := os.Remove(opts.Checkpoint); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("remove the checkpoint: %w", err)
		}
	}
	return res, ctx.Err()
}

// sortedUnion returns the sorted union of two sorted lists.
func sortedUnion(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
