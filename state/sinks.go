package state

import (
	"sort"
	"time"

	"github.com/google/btree"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// The store's change feed for what leaves Raft: every finished task, in the
// order of the Raft index at which it finished. Sinks (the archive, event
// streams) follow the feed from a replicated cursor: "sink X acknowledged
// every finished task through index N". GC collects a finished task only
// once every sink the leader names in the GC request has acknowledged it,
// so history is never lost while a sink is down; a new leader resumes each
// sink from its cursor.

// feedItem orders finished tasks by the Raft index they finished at.
type feedItem struct {
	index uint64
	id    string
}

func feedLess(a, b feedItem) bool {
	if a.index != b.index {
		return a.index < b.index
	}
	return a.id < b.id
}

func newFeed() *btree.BTreeG[feedItem] { return btree.NewG(32, feedLess) }

// sinkState is one sink's cursor and how many finished tasks it has not
// acknowledged yet (kept incrementally: counting on each read would cost
// the whole backlog).
type sinkState struct {
	cursor  uint64
	unacked int
}

// SinkAckRequest records that sink acknowledged every finished task
// through Raft index Through. A cursor never moves back: an older ack
// (from a relay that lost leadership) is ignored.
type SinkAckRequest struct {
	Sink    string `json:"sink"`
	Through uint64 `json:"through"`
}

// SinkStatus is a sink's position in the feed.
type SinkStatus struct {
	// Name is the sink's name.
	Name string `json:"name"`
	// Known is false for a sink that never acknowledged anything (it then
	// holds every finished task).
	Known bool `json:"known"`
	// Cursor is the Raft index through which the sink acknowledged.
	Cursor uint64 `json:"cursor"`
	// Backlog is the number of finished tasks in the state that the sink
	// has not acknowledged.
	Backlog int `json:"backlog"`
	// Oldest is the finish time of the oldest of them (zero when none).
	Oldest time.Time `json:"oldest,omitempty"`
}

// feedAdd and feedRemove keep the feed and the sinks' backlogs in step
// with a finished task's arrival and departure.
func (s *Store) feedAdd(t *task.Task) {
	s.feed.ReplaceOrInsert(feedItem{t.Index, t.ID})
	for _, st := range s.sinks {
		if t.Index > st.cursor {
			st.unacked++
		}
	}
}

func (s *Store) feedRemove(t *task.Task) {
	if _, ok := s.feed.Delete(feedItem{t.Index, t.ID}); !ok {
		return
	}
	for _, st := range s.sinks {
		if t.Index > st.cursor {
			st.unacked--
		}
	}
}

// countAfter counts feed items with index in (after, through]; through 0
// means no upper bound.
func (s *Store) countAfter(after, through uint64) int {
	n := 0
	s.feed.AscendGreaterOrEqual(feedItem{index: after + 1}, func(it feedItem) bool {
		if through > 0 && it.index > through {
			return false
		}
		n++
		return true
	})
	return n
}

// SinkAck moves a sink's cursor forward (see SinkAckRequest).
func (s *Store) SinkAck(index uint64, req *SinkAckRequest) error {
	if req.Sink == "" {
		return greyerr.Invalid("sink", "is required")
	}
	x := s.begin(index, time.Time{})
	defer x.commit()
	st := s.sinks[req.Sink]
	if st == nil {
		st = &sinkState{cursor: req.Through, unacked: s.countAfter(req.Through, 0)}
		s.sinks[req.Sink] = st
		return nil
	}
	if req.Through <= st.cursor {
		return nil
	}
	st.unacked -= s.countAfter(st.cursor, req.Through)
	st.cursor = req.Through
	return nil
}

// Sink returns a sink's position in the feed.
func (s *Store) Sink(name string) SinkStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.sinks[name]
	out := SinkStatus{Name: name}
	var after uint64
	if st != nil {
		out.Known, out.Cursor, out.Backlog = true, st.cursor, st.unacked
		after = st.cursor
	} else {
		out.Backlog = s.feed.Len()
	}
	s.feed.AscendGreaterOrEqual(feedItem{index: after + 1}, func(it feedItem) bool {
		if t := s.tasks[it.id]; t != nil && t.FinishedAt != nil {
			out.Oldest = *t.FinishedAt
		}
		return false
	})
	return out
}

// SinkBacklog is Sink(name).Backlog without the oldest task's lookup (for
// the submit path).
func (s *Store) SinkBacklog(name string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if st := s.sinks[name]; st != nil {
		return st.unacked
	}
	return s.feed.Len()
}

// Sinks lists every sink with a cursor, by name.
func (s *Store) Sinks() []SinkStatus {
	s.mu.RLock()
	names := make([]string, 0, len(s.sinks))
	for n := range s.sinks {
		names = append(names, n)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	out := make([]SinkStatus, len(names))
	for i, n := range names {
		out[i] = s.Sink(n)
	}
	return out
}

// FeedBatch is a run of the feed: finished tasks in Raft order and the
// proof envelopes they name.
type FeedBatch struct {
	// Tasks finished after the requested index, in (index, id) order.
	Tasks []*task.Task
	// Proofs maps a proof id of Tasks to its envelope.
	Proofs map[string][]byte
	// Through is the Raft index the batch completes: every finished task
	// with an index up to it is in this batch or an earlier one (0 when
	// the batch is empty).
	Through uint64
}

// FeedAfter returns up to about max finished tasks that finished after
// Raft index after. A batch never splits the tasks of one index (a Raft
// entry may finish many), so it may exceed max by the rest of the last
// index's tasks.
func (s *Store) FeedAfter(after uint64, max int) FeedBatch {
	var b FeedBatch
	var blobs map[string]*proofBlob
	s.mu.RLock()
	s.feed.AscendGreaterOrEqual(feedItem{index: after + 1}, func(it feedItem) bool {
		if len(b.Tasks) >= max && it.index != b.Through {
			return false
		}
		t := s.tasks[it.id]
		if t == nil {
			return true
		}
		b.Tasks = append(b.Tasks, t)
		b.Through = it.index
		if t.ProofID != "" {
			if p := s.proofs[t.ProofID]; p != nil {
				if blobs == nil {
					blobs = map[string]*proofBlob{}
				}
				blobs[t.ProofID] = p
			}
		}
		return true
	})
	s.mu.RUnlock()
	// Packed envelopes are decompressed outside the lock, which the FSM
	// waits for (a stored blob never changes).
	if len(blobs) > 0 {
		b.Proofs = make(map[string][]byte, len(blobs))
		for id, p := range blobs {
			b.Proofs[id] = p.bytes()
		}
	}
	return b
}

// held reports whether a sink named in hold has not acknowledged t.
func (s *Store) held(t *task.Task, hold []string) bool {
	for _, name := range hold {
		st := s.sinks[name]
		if st == nil || st.cursor < t.Index {
			return true
		}
	}
	return false
}

// rebuildFeed derives the feed and every sink's backlog from the tasks
// (after a snapshot restore).
func (s *Store) rebuildFeed() {
	s.feed = newFeed()
	for _, t := range s.tasks {
		if t.Status.Terminal() {
			s.feed.ReplaceOrInsert(feedItem{t.Index, t.ID})
		}
	}
	for _, st := range s.sinks {
		st.unacked = s.countAfter(st.cursor, 0)
	}
}
