package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivecopy"
	"github.com/grey-distributed/grey/archive/shardarchive"
)

// archiveRegistry returns the archive drivers greyctl opens archives with.
type archiveRegistry func() (*archive.Registry, error)

func newArchiveCmd(a *app, drivers archiveRegistry) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Move archived tasks between archives, or between the shards of one (offline)",
		Long: `Work on archives directly, with the same drivers as greyd (no server is
involved): copy an archive to another of any scheme, or move the tenants
of a sharded archive to the shards that own them after the shard list
changed. See docs/ARCHIVE.md ("Moving archives").`,
		RunE: groupRun,
	}
	cmd.AddCommand(newArchiveMigrateCmd(a, drivers), newArchiveRebalanceCmd(a, drivers))
	return cmd
}

// openArchive opens rawURL for greyctl: no retries beyond the store's
// defaults, the schema migrated when asked.
func openArchive(ctx context.Context, reg *archive.Registry, rawURL string, migrate bool) (*archive.Store, error) {
	return reg.Open(ctx, rawURL, archive.OpenOptions{Migrate: migrate}, archive.Options{Name: "greyctl"})
}

// parseSince reads --since: an RFC 3339 time, a date, or a duration back
// from now (24h).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a time (2026-01-02T15:04:05Z, 2026-01-02) nor a duration back from now (24h)", s)
}

func newArchiveMigrateCmd(a *app, drivers archiveRegistry) *cobra.Command {
	var from, to, tenantID, since, checkpoint string
	var rateN float64
	var batch int
	var verify, migrate bool
	cmd := &cobra.Command{
		Use:   "migrate --from URL --to URL",
		Short: "Copy archived tasks from one archive to another, resumably, and verify the copy",
		Long: `Copy the archived tasks of every tenant (or of --tenant T; GREY_TENANT is
not used here) from the archive at
--from to the archive at --to, newest first, in batches, at most --rate
records a second. Writes are idempotent: a record already there is
replaced by the source's. With --checkpoint FILE the position is saved
after every batch (atomically) and a rerun with the same FILE and options
resumes after the last batch written; the file is removed at the end.
--verify then compares both sides (per-tenant counts and an
order-independent digest) and names the ids that differ; a difference
exits 1. The URLs are those of archive.url (any registered scheme).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageErrorf("archive migrate needs --from and --to")
			}
			// The global --tenant, when given on the command line (not
			// GREY_TENANT: a migration of one tenant must be asked for).
			if fl := cmd.Flag("tenant"); fl != nil && fl.Changed {
				tenantID = a.tenant
			}
			sinceT, err := parseSince(since, time.Now())
			if err != nil {
				return usageErrorf("%v", err)
			}
			reg, err := drivers()
			if err != nil {
				return failure(err)
			}
			ctx := cmd.Context()
			src, err := openArchive(ctx, reg, from, false)
			if err != nil {
				return failure(fmt.Errorf("--from: %w", err))
			}
			defer src.Close()
			dst, err := openArchive(ctx, reg, to, migrate)
			if err != nil {
				return failure(fmt.Errorf("--to: %w", err))
			}
			defer dst.Close()
			bar := a.newProgress("archive migrate: records copied", 0, false)
			res, err := archivecopy.Copy(ctx, src, dst, archivecopy.Options{
				Tenant: tenantID, Since: sinceT, Batch: batch, Rate: rateN, Checkpoint: checkpoint,
				Progress: func(p archivecopy.Progress) { bar.Set(int64(p.Records)) },
			})
			bar.Finish()
			if err != nil {
				if checkpoint != "" {
					return failure(fmt.Errorf("%w (rerun with --checkpoint %s to resume)", err, checkpoint))
				}
				return failure(err)
			}
			out := struct {
				archivecopy.Result
				RecordsPerSecond float64             `json:"records_per_second"`
				Verify           *archivecopy.Report `json:"verify,omitempty"`
			}{Result: res, RecordsPerSecond: res.RecordsPerSecond()}
			if verify {
				rep, err := archivecopy.Verify(ctx, src, dst, archivecopy.VerifyOptions{Tenant: tenantID, Since: sinceT})
				if err != nil {
					return failure(fmt.Errorf("verify: %w", err))
				}
				out.Verify = &rep
			}
			if a.json() {
				if err := writeJSON(a.stdout, out); err != nil {
					return err
				}
			} else {
				resumed := ""
				if res.Resumed {
					resumed = " (resumed from the checkpoint)"
				}
				fmt.Fprintf(a.stdout, "copied %d records of %d tenants in %s (%.0f records/s)%s\n",
					res.Records, res.Tenants, res.Elapsed.Round(time.Millisecond), res.RecordsPerSecond(), resumed)
				if out.Verify != nil && out.Verify.Equal() {
					fmt.Fprintf(a.stdout, "verified: %d tenants, %d records on both sides, digest %s\n",
						len(out.Verify.Tenants), out.Verify.FromCount, out.Verify.FromDigest)
				}
			}
			if out.Verify != nil && !out.Verify.Equal() {
				for _, line := range out.Verify.Differences() {
					fmt.Fprintln(a.stderr, line)
				}
				return failure(fmt.Errorf("verify: the archives differ (source %d records, digest %s; target %d records, digest %s)",
					out.Verify.FromCount, out.Verify.FromDigest, out.Verify.ToCount, out.Verify.ToDigest))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "URL of the archive to copy from")
	f.StringVar(&to, "to", "", "URL of the archive to copy to")
	f.StringVar(&since, "since", "", "copy only tasks finished at or after this time (RFC 3339, a date, or a duration back from now: 24h)")
	f.Float64Var(&rateN, "rate", 0, "records per second at most (0: no limit)")
	f.IntVar(&batch, "batch", archivecopy.DefaultBatch, fmt.Sprintf("records per read and write (1 to %d)", archive.MaxLimit))
	f.StringVar(&checkpoint, "checkpoint", "", "file to save progress in, and to resume from")
	f.BoolVar(&verify, "verify", false, "compare both archives after the copy and name the ids that differ")
	f.BoolVar(&migrate, "migrate-schema", false, "create or upgrade the target's schema first (needs the schema owner's credentials)")
	return cmd
}

func newArchiveRebalanceCmd(a *app, drivers archiveRegistry) *cobra.Command {
	var shards, retire []string
	var sharded string
	var dryRun bool
	var rateN float64
	var batch int
	cmd := &cobra.Command{
		Use:   "rebalance (--shards URL,URL... [--retire URL,...] | --archive sharded://...)",
		Short: "Move the tenants of a sharded archive to the shards that own them",
		Long: `After shards were added to a sharded archive (greyd then refuses to start:
"shard list changed: N tenants are on the wrong shard"), move every tenant
that a shard holds but another owns: copy its records to the owner, verify
them there, then delete exactly the verified records from the old shard.
To remove shards, name them with --retire (or retire= in the sharded://
URL): they own no tenant, so everything they hold moves to the remaining
shards, after which they are empty and can go.
Readers of a sharded archive opened with allow_misplaced=true see every
tenant whole throughout. --dry-run lists the moves without making them.
Run it again after a failure: it picks up what is still misplaced.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []shardarchive.ShardURL
			var err error
			switch {
			case sharded != "" && len(shards)+len(retire) > 0:
				return usageErrorf("give --shards (and --retire) or --archive, not both")
			case sharded != "":
				list, err = shardarchive.ParseURL(sharded)
			case len(shards) > 0:
				list, err = shardarchive.List(shards, retire)
			default:
				return usageErrorf("archive rebalance needs --shards or --archive")
			}
			if err != nil {
				return usageErrorf("%v", err)
			}
			reg, err := drivers()
			if err != nil {
				return failure(err)
			}
			ctx := cmd.Context()
			stores := make([]*archive.Store, len(list))
			for i, s := range list {
				st, err := openArchive(ctx, reg, s.URL, false)
				if err != nil {
					return failure(fmt.Errorf("shard %s: %w", s.ID, err))
				}
				defer st.Close()
				stores[i] = st
			}
			var bar *progress
			res, err := shardarchive.Rebalance(ctx, shardarchive.IDs(list), stores, shardarchive.RebalanceOptions{
				DryRun: dryRun, Rate: rateN, Batch: batch, Owners: shardarchive.Owners(list),
				Progress: func(p shardarchive.RebalanceProgress) {
					if bar == nil {
						bar = a.newProgress("archive rebalance: tenants moved", int64(p.Moves), false)
					}
					bar.Set(int64(p.MovesDone))
				},
			})
			bar.Finish()
			if a.json() {
				if werr := writeJSON(a.stdout, res); werr != nil {
					return werr
				}
			} else {
				tw := newTabWriter(a.stdout)
				if len(res.Moves) > 0 {
					fmt.Fprintln(tw, "TENANT\tFROM\tTO\tCOPIED\tDELETED")
				}
				for _, m := range res.Moves {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", m.Tenant, m.FromID, m.ToID, m.Copied, m.Deleted)
				}
				_ = tw.Flush()
				verb := "moved"
				if dryRun {
					verb = "would move"
				}
				fmt.Fprintf(a.stdout, "%s %d of %d tenants (%d records) in %s\n", verb, len(res.Moves), res.Tenants, res.Records, res.Elapsed.Round(time.Millisecond))
			}
			if err != nil {
				return failure(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&shards, "shards", nil, "the new shard list: child archive URLs, comma-separated or repeated")
	f.StringSliceVar(&retire, "retire", nil, "shards being removed: child archive URLs that own no tenant and are emptied into the --shards")
	f.StringVar(&sharded, "archive", "", "the sharded:// URL of the archive, retire= included (instead of --shards)")
	f.BoolVar(&dryRun, "dry-run", false, "list the tenants that would move, and move nothing")
	f.Float64Var(&rateN, "rate", 0, "records per second at most (0: no limit)")
	f.IntVar(&batch, "batch", archivecopy.DefaultBatch, fmt.Sprintf("records per read and write (1 to %d)", archive.MaxLimit))
	return cmd
}
