package shardarchive

import (
	"context"
	"fmt"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivecopy"
	"github.com/grey-distributed/grey/greyerr"
)

// RebalanceOptions configure Rebalance.
type RebalanceOptions struct {
	// DryRun only finds the misplaced tenants.
	DryRun bool
	// Rate bounds the records copied per second (0: no bound).
	Rate float64
	// Batch is the records per read and write (0: archivecopy's default).
	Batch int
	// Owners is how many of the shards (the first ones) own tenants; the
	// others are retiring and are emptied into the owners (0: every
	// shard owns; see Owners).
	Owners int
	// Progress, when not nil, is called after every batch copied and
	// every tenant moved.
	Progress func(RebalanceProgress)
}

// RebalanceProgress is the state of a running rebalance.
type RebalanceProgress struct {
	// Tenant is the tenant being moved, MovesDone of Moves are done.
	Tenant    string `json:"tenant"`
	MovesDone int    `json:"moves_done"`
	Moves     int    `json:"moves"`
	// Records copied so far.
	Records int64 `json:"records"`
}

// Move is one misplaced tenant's move.
type Move struct {
	Misplaced
	// Copied records to the owner, Deleted from the old shard after they
	// verified equal on both.
	Copied  int64 `json:"copied"`
	Deleted int64 `json:"deleted"`
}

// RebalanceResult is what Rebalance did (or, in a dry run, would do).
type RebalanceResult struct {
	// Shards held Tenants tenants in all (each counted once per shard).
	Tenants int `json:"tenants"`
	// Moves are the misplaced tenants, each with what was done.
	Moves []Move `json:"moves"`
	// Records copied in all.
	Records int64         `json:"records"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Rebalance moves every misplaced tenant (FindMisplaced) to its owner:
// copy the tenant's records from the shard holding them to the owner,
// verify that the owner holds every one of them with the same content,
// then delete exactly the verified records from the old shard. Readers
// of a sharded archive opened with allow_misplaced see the tenant whole
// throughout (from the old shard, then the owner). A record that appears
// on the old shard while it runs (a writer with the old shard list) is
// left there, and Rebalance fails naming it; run it again. stores[i] is
// the shard of ids[i]. Retiring shards (after opts.Owners) own nothing:
// every tenant they hold moves, which empties them for removal.
func Rebalance(ctx context.Context, ids []string, stores []*archive.Store, opts RebalanceOptions) (RebalanceResult, error) {
	start := time.Now()
	var res RebalanceResult
	if len(ids) != len(stores) {
		return res, greyerr.Invalid("shard", "Rebalance needs one store per shard")
	}
	listers := make([]archive.TenantLister, len(stores))
	for i, s := range stores {
		listers[i] = s
	}
	mis, held, err := FindMisplaced(ctx, ids, opts.Owners, listers)
	if err != nil {
		return res, err
	}
	for _, h := range held {
		res.Tenants += len(h)
	}
	for _, m := range mis {
		res.Moves = append(res.Moves, Move{Misplaced: m})
	}
	if opts.DryRun {
		res.Elapsed = time.Since(start)
		return res, nil
	}
	for n := range res.Moves {
		mv := &res.Moves[n]
		from, to := stores[mv.From], stores[mv.To]
		cr, err := archivecopy.Copy(ctx, from, to, archivecopy.Options{
			Tenant: mv.Tenant, Rate: opts.Rate, Batch: opts.Batch,
			Progress: func(p archivecopy.Progress) {
				if opts.Progress != nil {
					opts.Progress(RebalanceProgress{Tenant: mv.Tenant, MovesDone: n, Moves: len(res.Moves), Records: res.Records + p.Records})
				}
			},
		})
		mv.Copied = cr.Records
		res.Records += cr.Records
		if err != nil {
			return res, fmt.Errorf("move tenant %s from %s to %s: copy: %w", mv.Tenant, mv.FromID, mv.ToID, err)
		}
		tr, err := archivecopy.VerifyTenantSame(ctx, from, to, mv.Tenant, time.Time{})
		if err != nil {
			return res, fmt.Errorf("move tenant %s from %s to %s: verify: %w", mv.Tenant, mv.FromID, mv.ToID, err)
		}
		for i := 0; i < len(tr.Same); i += archive.MaxLimit {
			d, err := from.Delete(ctx, mv.Tenant, tr.Same[i:min(i+archive.MaxLimit, len(tr.Same))])
			mv.Deleted += d
			if err != nil {
				return res, fmt.Errorf("move tenant %s from %s to %s: delete from the old shard: %w", mv.Tenant, mv.FromID, mv.ToID, err)
			}
		}
		if tr.MissingCount+tr.DifferCount > 0 {
			return res, greyerr.New(greyerr.FailedPrecondition, "move tenant %s from %s to %s: %d records changed on the old shard while moving (%v): run the rebalance again",
				mv.Tenant, mv.FromID, mv.ToID, tr.MissingCount+tr.DifferCount, append(tr.Missing, tr.Differ...))
		}
		if opts.Progress != nil {
			opts.Progress(RebalanceProgress{Tenant: mv.Tenant, MovesDone: n + 1, Moves: len(res.Moves), Records: res.Records})
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
