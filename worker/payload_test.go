package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// fetchCoord is a fakeCoord that also serves payload objects, by task id.
type fetchCoord struct {
	fakeCoord
	bodies map[task.ID][]byte
	asked  []worker.PayloadRequest
}

func (c *fetchCoord) FetchPayload(_ context.Context, req *worker.PayloadRequest) (io.ReadCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, *req)
	b, ok := c.bodies[req.TaskID]
	if !ok {
		return nil, greyerr.New(greyerr.FailedPrecondition, "not your lease")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// A lease that names its payload object instead of carrying it
// (PayloadFetch) runs the handler on the fetched bytes, checked against
// the object's size and SHA-256: binary bodies as PayloadBinary, others as
// Payload. Bytes that do not match (another digest, another length) fail
// the task for good with payload_digest_mismatch and never reach the
// handler; a refused fetch fails it as retryable.
func TestPoolFetchesPayloadObjects(t *testing.T) {
	bin := []byte(task.BinaryPayloadPrefix + "2\r\n\r\n{}raw")
	js := []byte(`{"a":1}`)
	ids := assignments(5)
	mk := func(i int, stored, recorded []byte) worker.Assignment {
		a := ids[i]
		a.Kind = "echo"
		a.PayloadFetch = true
		a.PayloadObject = &task.DataRef{Ref: "uploads/x", Size: int64(len(recorded)), SHA256: sha(recorded)}
		return a
	}
	c := &fetchCoord{fakeCoord: fakeCoord{reports: map[task.ID]worker.Report{}}, bodies: map[task.ID][]byte{}}
	c.pending = []worker.Assignment{mk(0, bin, bin), mk(1, js, js), mk(2, nil, bin), mk(3, nil, bin), mk(4, nil, bin)}
	c.bodies[ids[0].TaskID] = bin
	c.bodies[ids[1].TaskID] = js
	c.bodies[ids[2].TaskID] = append(bytes.Clone(bin[:len(bin)-1]), 'X') // same length, other digest
	c.bodies[ids[3].TaskID] = append(bytes.Clone(bin), 'X')              // longer
	// ids[4]: the coordinator refuses the fetch.
	p := worker.NewPool(c, worker.Options{WorkerID: "w1", Concurrency: 8, HeartbeatInterval: time.Hour})
	ran := make(chan task.ID, 8)
	p.HandleFunc("echo", func(_ context.Context, j *worker.Job) (any, error) {
		ran <- j.TaskID
		switch {
		case j.PayloadFetch:
			return nil, errors.New("the handler saw PayloadFetch still set")
		case len(j.PayloadBinary) > 0:
			return map[string]any{"binary": string(j.PayloadBinary)}, nil
		default:
			return map[string]any{"json": string(j.Payload)}, nil
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, a := range ids {
			if _, ok := c.report(a.TaskID); ok {
				n++
			}
		}
		if n == len(ids) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	get := func(i int) worker.Report {
		r, ok := c.report(ids[i].TaskID)
		if !ok {
			t.Fatalf("task %d: no outcome", i)
		}
		return r
	}
	if r := get(0); r.Status != task.Completed || !strings.Contains(string(r.Result), `"binary"`) {
		t.Errorf("binary body: %s %s %+v", r.Status, r.Result, r.Error)
	}
	if r := get(1); r.Status != task.Completed || !strings.Contains(string(r.Result), `{\"a\":1}`) {
		t.Errorf("JSON body: %s %s %+v", r.Status, r.Result, r.Error)
	}
	for _, i := range []int{2, 3} {
		r := get(i)
		if r.Status != task.Failed || r.Error == nil || r.Error.Code != "payload_digest_mismatch" || r.Error.Retryable ||
			!strings.Contains(r.Error.Message, sha(bin)) {
			t.Errorf("task %d (bytes that do not match): %s %+v, want a non-retryable payload_digest_mismatch naming the recorded digest", i, r.Status, r.Error)
		}
	}
	if r := get(4); r.Status != task.Failed || r.Error == nil || r.Error.Code != "payload_unavailable" || !r.Error.Retryable {
		t.Errorf("refused fetch: %s %+v, want a retryable payload_unavailable", r.Status, r.Error)
	}
	close(ran)
	for id := range ran {
		if id != ids[0].TaskID && id != ids[1].TaskID {
			t.Errorf("the handler ran task %s, whose payload did not check", id)
		}
	}
	for _, q := range c.asked {
		if q.WorkerID != "w1" || q.Attempt != 1 {
			t.Errorf("fetch asked as %+v, want worker w1 attempt 1", q)
		}
	}
}
