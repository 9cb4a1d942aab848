package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/taskdata"
	"github.com/grey-distributed/grey/worker"
)

// A worker's result in the binary form (an inference response over the
// inline limit) crosses the remote lease protocol, is stored by reference
// as it is and served with its content type; the Go client's Get gives its
// JSON and Result the stored bytes (whose digest is the task's). A binary
// result under the inline limit, or one that is not in the binary form, is
// refused (400). A binary payload object is refused at submit for a kind
// that does not read it.
func TestBinaryResultOverTheWire(t *testing.T) {
	s, mk := startDataServer(t, "", 0, func(c *config.Config) { c.Tasks.MaxPayloadBytes = 1024; c.Tasks.Kinds = []string{"ext"} })
	c := mk("acme")
	ctx := context.Background()
	x := make([]byte, 4*512)
	for i := range 512 {
		binary.LittleEndian.PutUint32(x[4*i:], math.Float32bits(float32(i)/7))
	}
	resp := &ai.Response{ModelName: "m", ModelVersion: "1", ID: "r", Outputs: []ai.Tensor{{Name: "y", Datatype: ai.FP32, Shape: []int64{256, 2}, Data: x}}}
	bin, err := ai.EncodeBinaryResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := ai.EncodeBinaryResponse(&ai.Response{ModelName: "m", ModelVersion: "1", Outputs: []ai.Tensor{{Name: "y", Datatype: ai.FP32, Shape: []int64{1}, Data: x[:4]}}})

	lease := func() worker.Assignment {
		t.Helper()
		if _, err := c.Submit(ctx, task.Spec{Kind: "ext", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		var got []worker.Assignment
		deadline := time.Now().Add(10 * time.Second)
		for len(got) == 0 && time.Now().Before(deadline) {
			lr, err := c.Lease(ctx, &worker.LeaseRequest{WorkerID: "w1", Kinds: []string{"ext"}, Max: 1, Wait: task.Duration(time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			got = lr.Tasks
		}
		if len(got) != 1 || got[0].ResultInlineMax != 1024 {
			t.Fatalf("leased %+v", got)
		}
		return got[0]
	}
	complete := func(a worker.Assignment, r worker.Report) error {
		r.TaskID, r.Attempt, r.Status, r.At = a.TaskID, a.Attempt, task.Completed, time.Now().UTC()
		cr, err := c.Complete(ctx, &worker.CompleteRequest{WorkerID: "w1", Reports: []worker.Report{r}})
		if err == nil && !cr.Results[0].Accepted {
			t.Fatalf("report refused: %+v", cr.Results[0])
		}
		return err
	}

	for _, bad := range []struct {
		name string
		r    worker.Report
	}{
		{"under the inline limit", worker.Report{ResultBinary: small}},
		{"not in the binary form", worker.Report{ResultBinary: bytes.Repeat([]byte("x"), 2048)}},
		{"beside a JSON result", worker.Report{ResultBinary: bin, Result: json.RawMessage(`1`)}},
	} {
		a := lease()
		if err := complete(a, bad.r); greyerr.CodeOf(err) != greyerr.InvalidArgument {
			t.Errorf("%s: %v, want invalid_argument", bad.name, err)
		}
		_ = complete(a, worker.Report{Result: json.RawMessage(`1`)})
	}

	a := lease()
	if err := complete(a, worker.Report{ResultBinary: bin}); err != nil {
		t.Fatal(err)
	}
	tk, err := c.Get(ctx, a.TaskID)
	if err != nil || tk.Status != task.Completed || tk.ResultRef == nil || tk.ResultRef.SHA256 != taskdata.Digest(bin) {
		t.Fatalf("task %+v, %v", tk, err)
	}
	want, _ := json.Marshal(resp)
	if !bytes.Equal(tk.Result, want) {
		t.Fatalf("Get's Result is not the response's JSON: %.80s", tk.Result)
	}
	if b, err := c.Result(ctx, a.TaskID); err != nil || !bytes.Equal(b, bin) {
		t.Fatalf("Result: %v", err)
	}
	if b, err := c.ResultJSON(ctx, a.TaskID); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("ResultJSON: %v", err)
	}
	hreq, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr()+"/api/v1/tasks/"+a.TaskID+"/result", nil)
	hreq.Header.Set(client.TenantHeader, "acme")
	hr, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if ct := hr.Header.Get("Content-Type"); ct != taskdata.BinaryContentType {
		t.Fatalf("content type %q", ct)
	}

	// A binary payload object for a kind that does not read it.
	body := ai.AppendBinaryBody(nil, []byte(`{"model":"m","inputs":[]}`), nil)
	ref, err := c.UploadPayload(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, task.Spec{Kind: "ext", PayloadRef: ref}); greyerr.CodeOf(err) != greyerr.InvalidArgument {
		t.Fatalf("a binary payload for kind ext: %v", err)
	}
}
