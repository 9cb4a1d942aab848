package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/relay"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// ArchiveSink is the name of the archive's cursor in the feed of finished
// tasks, and the prefix of its metrics (grey_archive_lag_tasks, ...).
const ArchiveSink = "archive"

// ArchiveConfig connects the engine to the archive.
type ArchiveConfig struct {
	// Store is the archive (nil: no archive; finished tasks leave the
	// state after Retention and are gone).
	Store *archive.Store
	// BatchSize is the most tasks written at once (0: 1000).
	BatchSize int
	// MaxBacklog is the most finished tasks the state holds unarchived;
	// past it submissions are refused (0: 100000).
	MaxBacklog int
	// Retention is how long the archive keeps a task (0: forever).
	Retention time.Duration
}

// archiveSink writes the feed's finished tasks to the archive.
type archiveSink struct{ e *Engine }

func (archiveSink) Name() string { return ArchiveSink }

func (s archiveSink) Deliver(ctx context.Context, b state.FeedBatch) error {
	recs := make([]archive.Record, len(b.Tasks))
	for i, t := range b.Tasks {
		recs[i] = archive.Record{Task: s.e.costOf(t)}
		if t.ProofID != "" {
			recs[i].Proof = b.Proofs[t.ProofID]
		}
	}
	return s.e.cfg.Archive.Store.Upsert(ctx, recs)
}

// newRelay builds the relay of the configured sinks (nil when none).
func (e *Engine) newRelay() (*relay.Relay, error) {
	sinks := append([]relay.Sink(nil), e.cfg.Sinks...)
	if e.cfg.Archive.Store != nil {
		sinks = append([]relay.Sink{archiveSink{e}}, sinks...)
	}
	if len(sinks) == 0 {
		return nil, nil
	}
	return relay.New(relay.Config{BatchSize: e.cfg.Archive.BatchSize, Logger: e.logger, Registerer: e.cfg.Metrics},
		e.node, e.store, sinks...)
}

// gcHold names the sinks that must acknowledge a finished task before GC
// may collect it.
func (e *Engine) gcHold() []string {
	if e.relay == nil {
		return nil
	}
	return e.relay.Names()
}

// Sinks reports the relay's sinks (none without an archive).
func (e *Engine) Sinks() []relay.Status {
	if e.relay == nil {
		return nil
	}
	return e.relay.Status()
}

// archiveBacklogFull refuses work while the archive's backlog is at its
// bound: the state must not grow without limit while the archive is down.
func (e *Engine) archiveBacklogFull() error {
	if e.cfg.Archive.Store == nil {
		return nil
	}
	backlog := e.store.SinkBacklog(ArchiveSink)
	if backlog < e.cfg.Archive.MaxBacklog {
		return nil
	}
	err := greyerr.New(greyerr.ResourceExhausted,
		"the archive is %d finished tasks behind (archive.max_backlog %d): new tasks wait until it catches up", backlog, e.cfg.Archive.MaxBacklog)
	err.Reason = "archive_backlog"
	err.RetryAfter = 5 * time.Second
	return err
}

// archiveDegraded says why the archive is behind, or "" when it is not.
func (e *Engine) archiveDegraded() string {
	for _, st := range e.Sinks() {
		if st.Name != ArchiveSink {
			continue
		}
		switch {
		case st.Backlog >= e.cfg.Archive.MaxBacklog:
			return fmt.Sprintf("archive backlog full: %d finished tasks not archived (archive.max_backlog %d); submissions refused; last error: %s",
				st.Backlog, e.cfg.Archive.MaxBacklog, orNone(st.LastError))
		case st.Failures > 0:
			return fmt.Sprintf("archive unavailable: %s; %d finished tasks wait in Raft (lag %.0fs)", st.LastError, st.Backlog, st.LagSeconds)
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none on this node"
	}
	return s
}

// archived returns the tenant's task from the archive (NotFound without an
// archive).
func (e *Engine) archived(ctx context.Context, tenant, id string) (archive.Record, error) {
	if e.cfg.Archive.Store == nil {
		return archive.Record{}, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	return e.cfg.Archive.Store.Get(ctx, tenant, id)
}

// collectArchive applies the archive's retention (the leader, at most
// hourly).
func (e *Engine) collectArchive(ctx context.Context, now time.Time) {
	a := e.cfg.Archive
	if a.Store == nil || a.Retention <= 0 || now.Sub(e.archiveSwept) < time.Hour {
		return
	}
	e.archiveSwept = now
	n, err := a.Store.DeleteBefore(ctx, now.Add(-a.Retention))
	if err != nil {
		e.logger.Warn("archive retention", "err", err)
		return
	}
	e.logger.Info("archive retention applied", "before", now.Add(-a.Retention), "deleted", n)
}

// listMerged pages through the Raft state and the archive as one list,
// newest first: both are ordered by task id, so a page is the merge of
// the two sources' next pages, and the cursor is the last id shown.
func (e *Engine) listMerged(ctx context.Context, tenant string, opts ListOptions, before string) ([]*task.Task, string, error) {
	limit := opts.Limit
	sf := state.ListFilter{Statuses: opts.Statuses, Kind: opts.Kind, Limit: limit + 1, Before: before,
		FinishedFrom: opts.FinishedFrom, FinishedTo: opts.FinishedTo, Labels: opts.Labels}
	live, _ := e.store.List(tenant, sf)
	var old []archive.Record
	if a := e.cfg.Archive.Store; a != nil {
		if f, ok := archiveFilter(opts.Filter); ok {
			var err error
			if old, err = a.ListBefore(ctx, tenant, f, before, limit+1); err != nil {
				return nil, "", err
			}
		}
	}
	out := make([]*task.Task, 0, min(limit, len(live)+len(old)))
	i, j := 0, 0
	more := false
	for {
		var next *task.Task
		switch {
		case i < len(live) && j < len(old):
			a, b := live[i], old[j].Task
			switch {
			case a.ID == b.ID: // archived, not yet collected: the state's copy
				next = a
				i++
				j++
			case a.ID > b.ID:
				next = a
				i++
			default:
				next = b
				j++
			}
		case i < len(live):
			next = live[i]
			i++
		case j < len(old):
			next = old[j].Task
			j++
		}
		if next == nil {
			break
		}
		if len(out) == limit {
			more = true
			break
		}
		out = append(out, e.costOf(next))
	}
	nextCursor := ""
	if more {
		nextCursor = archive.EncodeCursor(tenant, opts.Filter, string(out[len(out)-1].ID))
	}
	return out, nextCursor, nil
}

// archiveFilter is the part of a list filter the archive can answer: its
// finished statuses. ok is false when the filter names only unfinished
// statuses (the archive has none of those).
func archiveFilter(f archive.Filter) (archive.Filter, bool) {
	if len(f.Statuses) == 0 {
		return f, true
	}
	out := f
	out.Statuses = slices.DeleteFunc(slices.Clone(f.Statuses), func(s task.Status) bool { return !s.Terminal() })
	return out, len(out.Statuses) > 0
}
