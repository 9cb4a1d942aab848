package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

const snapshotVersion = 1

// snapshotRecord is one line of a snapshot: a header, a task, or a state
// key's queue (kept verbatim because its FIFO order is apply order).
type snapshotRecord struct {
	Version int        `json:"version,omitempty"`
	Index   uint64     `json:"index,omitempty"`
	Task    *task.Task `json:"task,omitempty"`
	Tenant  string     `json:"tenant,omitempty"`
	Key     string     `json:"key,omitempty"`
	Queue   []string   `json:"queue,omitempty"`
	// Tenant records: the tenant (nil if it has none), the ledger and the
	// time storage was last integrated.
	TenantState *tenantRecord `json:"tenant_state,omitempty"`
	// Node is a registered member; ClusterID the cluster's id (header).
	Node      *Node  `json:"node,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
	// SigningKey is a registered proof-signing key.
	SigningKey *SigningKey `json:"signing_key,omitempty"`
	// Proof is a stored proof envelope.
	Proof *proofRecord `json:"proof,omitempty"`
	// APIKey is a service-account API key (with its secret hash).
	APIKey *APIKey `json:"api_key,omitempty"`
	// Sink is a sink's cursor in the feed of finished tasks.
	Sink *sinkRecord `json:"sink,omitempty"`
}

type sinkRecord struct {
	Name   string `json:"name"`
	Cursor uint64 `json:"cursor"`
}

type proofRecord struct {
	ID       string          `json:"id"`
	Envelope json.RawMessage `json:"envelope"`

	blob *proofBlob // the stored envelope, expanded into Envelope as it is written
}

type tenantRecord struct {
	ID       string         `json:"id"`
	Tenant   *tenant.Tenant `json:"tenant,omitempty"`
	StoredAt time.Time      `json:"stored_at"`
	// BlobBytes are the bytes the tenant holds in blob buckets (the state
	// derives its task bytes from the tasks; these it cannot).
	BlobBytes int64                   `json:"blob_bytes,omitempty"`
	Usage     map[int64]*tenant.Usage `json:"usage,omitempty"`
}

// Snapshot is a point-in-time copy of the store, cheap to take (it copies
// pointers to immutable tasks) and written out later by WriteTo.
type Snapshot struct {
	index uint64
	tasks []*task.Task
	keys  map[tenantKey][]string
	ten   []*tenantRecord
	nodes []Node
	sks   []SigningKey
	prfs  []proofRecord
	aks   []*APIKey // API keys
	sinks []sinkRecord
	cid   string
}

// Snapshot captures the current state.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn := &Snapshot{index: s.index, tasks: make([]*task.Task, 0, len(s.tasks)), keys: make(map[tenantKey][]string, len(s.keys))}
	for _, t := range s.tasks {
		sn.tasks = append(sn.tasks, t)
	}
	for k, q := range s.keys {
		sn.keys[k] = append([]string(nil), q...)
	}
	for id, ts := range s.tenantsByID {
		r := &tenantRecord{ID: id, Tenant: ts.t, StoredAt: ts.storedAt, BlobBytes: ts.blob, Usage: make(map[int64]*tenant.Usage, len(ts.usage))}
		for h, u := range ts.usage {
			c := *u
			r.Usage[h] = &c
		}
		sn.ten = append(sn.ten, r)
	}
	sort.Slice(sn.ten, func(i, j int) bool { return sn.ten[i].ID < sn.ten[j].ID })
	for _, n := range s.nodes {
		sn.nodes = append(sn.nodes, *n)
	}
	sort.Slice(sn.nodes, func(i, j int) bool { return sn.nodes[i].ID < sn.nodes[j].ID })
	for _, k := range s.signingKeys {
		sn.sks = append(sn.sks, *k)
	}
	sort.Slice(sn.sks, func(i, j int) bool { return sn.sks[i].KeyID < sn.sks[j].KeyID })
	for id, b := range s.proofs {
		sn.prfs = append(sn.prfs, proofRecord{ID: id, blob: b})
	}
	sort.Slice(sn.prfs, func(i, j int) bool { return sn.prfs[i].ID < sn.prfs[j].ID })
	for _, k := range s.apiKeys {
		sn.aks = append(sn.aks, k) // records are immutable once stored
	}
	sortAPIKeys(sn.aks)
	for name, st := range s.sinks {
		sn.sinks = append(sn.sinks, sinkRecord{Name: name, Cursor: st.cursor})
	}
	sort.Slice(sn.sinks, func(i, j int) bool { return sn.sinks[i].Name < sn.sinks[j].Name })
	sn.cid = s.clusterID
	return sn
}

// WriteTo writes the snapshot as JSON lines.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &countWriter{w: bw}
	enc := json.NewEncoder(cw)
	if err := enc.Encode(snapshotRecord{Version: snapshotVersion, Index: sn.index, ClusterID: sn.cid}); err != nil {
		return cw.n, err
	}
	sort.Slice(sn.tasks, func(i, j int) bool { return sn.tasks[i].ID < sn.tasks[j].ID })
	for _, t := range sn.tasks {
		if err := enc.Encode(snapshotRecord{Task: t}); err != nil {
			return cw.n, err
		}
	}
	keys := make([]tenantKey, 0, len(sn.keys))
	for k := range sn.keys {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].tenant != keys[j].tenant {
			return keys[i].tenant < keys[j].tenant
		}
		return keys[i].key < keys[j].key
	})
	for _, k := range keys {
		if err := enc.Encode(snapshotRecord{Tenant: k.tenant, Key: k.key, Queue: sn.keys[k]}); err != nil {
			return cw.n, err
		}
	}
	for _, r := range sn.ten {
		if err := enc.Encode(snapshotRecord{TenantState: r}); err != nil {
			return cw.n, err
		}
	}
	for i := range sn.nodes {
		if err := enc.Encode(snapshotRecord{Node: &sn.nodes[i]}); err != nil {
			return cw.n, err
		}
	}
	for i := range sn.sks {
		if err := enc.Encode(snapshotRecord{SigningKey: &sn.sks[i]}); err != nil {
			return cw.n, err
		}
	}
	for i := range sn.prfs {
		// Snapshots hold proofs raw (older builds restore them): a packed
		// one is expanded here, one at a time, not while the store was
		// locked to take the snapshot.
		r := proofRecord{ID: sn.prfs[i].ID, Envelope: sn.prfs[i].Envelope}
		if b := sn.prfs[i].blob; b != nil {
			r.Envelope = b.bytes()
		}
		if err := enc.Encode(snapshotRecord{Proof: &r}); err != nil {
			return cw.n, err
		}
	}
	for _, k := range sn.aks {
		if err := enc.Encode(snapshotRecord{APIKey: k}); err != nil {
			return cw.n, err
		}
	}
	for i := range sn.sinks {
		if err := enc.Encode(snapshotRecord{Sink: &sn.sinks[i]}); err != nil {
			return cw.n, err
		}
	}
	return cw.n, bw.Flush()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the store's contents with a snapshot written by WriteTo.
// On error the store keeps what it held and the error says why.
func (s *Store) Restore(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	var hdr snapshotRecord
	if err := dec.Decode(&hdr); err != nil {
		return fmt.Errorf("snapshot header: %w", err)
	}
	if hdr.Version != snapshotVersion {
		return fmt.Errorf("snapshot version %d not supported (want %d)", hdr.Version, snapshotVersion)
	}
	fresh := New()
	fresh.index = hdr.Index
	fresh.clusterID = hdr.ClusterID
	x := &txn{s: fresh, index: hdr.Index, restoring: true}
	for {
		var rec snapshotRecord
		err := dec.Decode(&rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("snapshot record: %w", err)
		}
		switch {
		case rec.Task != nil:
			t := rec.Task
			idx := t.Index
			x.put(t)
			t.Index = idx
			if t.IdempotencyKey != "" {
				fresh.idem[tenantKey{t.TenantID, t.IdempotencyKey}] = t.ID
			}
			if t.Status.Terminal() && t.FinishedAt != nil {
				fresh.finished.ReplaceOrInsert(finishedItem{at: *t.FinishedAt, id: t.ID})
			}
		case rec.Key != "":
			fresh.keys[tenantKey{rec.Tenant, rec.Key}] = rec.Queue
		case rec.Node != nil:
			fresh.nodes[rec.Node.ID] = rec.Node
		case rec.SigningKey != nil:
			fresh.signingKeys[rec.SigningKey.KeyID] = rec.SigningKey
		case rec.Proof != nil:
			fresh.proofs[rec.Proof.ID] = &proofBlob{env: rec.Proof.Envelope}
		case rec.APIKey != nil:
			fresh.apiKeys[rec.APIKey.ID] = rec.APIKey
		case rec.Sink != nil:
			fresh.sinks[rec.Sink.Name] = &sinkState{cursor: rec.Sink.Cursor}
		case rec.TenantState != nil:
			r := rec.TenantState
			ts := fresh.tstate(r.ID)
			ts.t, ts.storedAt, ts.blob = r.Tenant, r.StoredAt, r.BlobBytes
			for h, u := range r.Usage {
				ts.usage[h] = u
			}
		}
	}
	fresh.rebuildFeed()
	// Per-tenant counters and proof references are derived from the tasks.
	for _, t := range fresh.tasks {
		if b := fresh.proofs[t.ProofID]; b != nil {
			b.refs++
		}
		ts := fresh.tstate(t.TenantID)
		ts.stored += int64(len(t.Payload) + len(t.Result))
		if !t.Status.Terminal() {
			ts.queued++
		}
	}
	for id, b := range fresh.proofs {
		if b.refs == 0 {
			delete(fresh.proofs, id) // no task refers to it any more
		}
	}
	// Dependencies are derived: a missing parent was collected after it
	// finished, and a failed one would already have failed its children.
	for _, t := range fresh.tasks {
		if t.Status.Terminal() || len(t.DependsOn) == 0 {
			continue
		}
		for _, p := range t.DependsOn {
			if pt := fresh.tasks[p]; pt != nil && pt.Status != task.Completed {
				fresh.deps[t.ID]++
				fresh.children[p] = append(fresh.children[p], t.ID)
			}
		}
	}
	s.mu.Lock()
	s.index = fresh.index
	s.tasks, s.byTenant, s.idem = fresh.tasks, fresh.byTenant, fresh.idem
	s.children, s.deps, s.keys = fresh.children, fresh.deps, fresh.keys
	s.finished, s.counts = fresh.finished, fresh.counts
	s.feed, s.sinks = fresh.feed, fresh.sinks
	s.tenantsByID = fresh.tenantsByID
	s.nodes, s.clusterID, s.signingKeys, s.proofs = fresh.nodes, fresh.clusterID, fresh.signingKeys, fresh.proofs
	s.apiKeys = fresh.apiKeys
	s.mu.Unlock()
	return nil
}
