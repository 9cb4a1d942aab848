package memarchive_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func harness() archivetest.Harness {
	return archivetest.Harness{
		Open: func(t testing.TB) archive.Driver { return memarchive.NewDriver() },
		Unreachable: func(t testing.TB) archive.Driver {
			d := memarchive.NewDriver()
			d.SetUnavailable(errors.New("connection refused (simulated)"))
			return d
		},
	}
}

func TestConformance(t *testing.T) {
	archivetest.Run(t, harness())
}

func BenchmarkArchive(b *testing.B) {
	archivetest.Bench(b, harness())
}

// full returns a record with every pointer, map and slice of the task set,
// so that the aliasing test covers every field (a new field left nil
// fails it, so it gets copied and tested too).
func full() archive.Record {
	r := archivetest.Make(archivetest.Spec{Tenant: "acme", Labels: map[string]string{"gpu": "true"}, TEE: "sgx"})
	t := r.Task
	yes := true
	at := time.Now()
	t.RequireProof = &yes
	t.RunAt = &at
	t.DependsOn = []string{archivetest.IDAt(at)}
	t.Lease = &task.Lease{WorkerID: "w", Deadline: at}
	t.PayloadObject = &task.DataRef{Ref: "uploads/x", Size: 1}
	t.ResultRef = &task.DataRef{Ref: "results/x", Size: 1}
	t.Error = &task.Error{Message: "m"}
	t.NextAttemptAt = &at
	return r
}

// shared reports the paths at which a and b (values of one type) share
// memory, and the paths at which a holds a nil reference.
func shared(path string, a, b reflect.Value, out *[]string) {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			*out = append(*out, path+" is nil in the fixture")
			return
		}
		if a.Pointer() == b.Pointer() {
			*out = append(*out, path+" is shared")
			return
		}
		shared(path, a.Elem(), b.Elem(), out)
	case reflect.Map:
		if a.IsNil() {
			*out = append(*out, path+" is nil in the fixture")
			return
		}
		if a.Pointer() == b.Pointer() {
			*out = append(*out, path+" is shared")
		}
	case reflect.Slice:
		if a.IsNil() {
			*out = append(*out, path+" is nil in the fixture")
			return
		}
		if a.Pointer() == b.Pointer() {
			*out = append(*out, path+" is shared")
			return
		}
		for i := range a.Len() {
			shared(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i), out)
		}
	case reflect.Struct:
		if a.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := range a.NumField() {
			if !a.Type().Field(i).IsExported() {
				continue
			}
			shared(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i), out)
		}
	}
}

func TestCopyRecordSharesNothing(t *testing.T) {
	r := full()
	var problems []string
	c := memarchive.CopyRecord(r)
	shared("Record", reflect.ValueOf(r), reflect.ValueOf(c), &problems)
	for _, p := range problems {
		// Attempts[0].Error and [1].Error: attempt 2 of a completed task
		// has no error; that nil is the fixture's, not a gap.
		if strings.HasPrefix(p, "Record.Task.Attempts[1].Error is nil") {
			continue
		}
		t.Error(p)
	}
	if !reflect.DeepEqual(r, c) {
		t.Error("the copy differs from the original")
	}
}

func TestNoAliasing(t *testing.T) {
	ctx := t.Context()
	s, err := memarchive.Open(archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := full()
	want := memarchive.CopyRecord(r)
	if err := s.Upsert(ctx, []archive.Record{r}); err != nil {
		t.Fatal(err)
	}
	// Changing what was written changes nothing stored.
	r.Task.Kind = "changed"
	r.Task.Result[0] = ' '
	r.Proof[0] = ' '
	r.Task.CostTags["x"] = "y"
	r.Task.Constraints.Labels["gpu"] = "false"
	r.Task.Attempts[0].Error.Message = "changed"
	*r.Task.FinishedAt = r.Task.FinishedAt.Add(time.Hour)
	got, err := s.Get(ctx, "acme", want.Task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("changing a written record changed the stored one")
	}
	// Changing what was read changes nothing stored.
	got.Task.Payload[0] = ' '
	got.Task.Headers["traceparent"] = "changed"
	p, err := s.List(ctx, "acme", archive.Query{})
	if err != nil || len(p.Records) != 1 {
		t.Fatal(p, err)
	}
	p.Records[0].Task.Usage.BytesIn = -1
	again, _ := s.Get(ctx, "acme", want.Task.ID)
	if !reflect.DeepEqual(again, want) {
		t.Error("changing a read record changed the stored one")
	}
}

func TestSetUnavailableAndLen(t *testing.T) {
	ctx := t.Context()
	d := memarchive.NewDriver()
	s, err := archive.New(d, archive.Options{Retry: archive.RetryOptions{MaxTries: 2, InitialInterval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	recs := []archive.Record{archivetest.Make(archivetest.Spec{Tenant: "a"}), archivetest.Make(archivetest.Spec{Tenant: "b"})}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 {
		t.Errorf("Len = %d, want 2", d.Len())
	}
	cause := errors.New("dial tcp: connection refused")
	d.SetUnavailable(cause)
	checks := map[string]error{
		"ping":   d.Ping(ctx),
		"upsert": d.Upsert(ctx, "a", recs[:1]),
	}
	_, checks["get"] = d.Get(ctx, "a", recs[0].Task.ID)
	_, checks["list"] = d.List(ctx, "a", archive.DriverQuery{Limit: 1})
	_, checks["count"] = d.Count(ctx, "a", archive.Filter{})
	_, checks["delete"] = d.DeleteBefore(ctx, time.Now().Add(time.Hour))
	_, checks["store get"] = s.Get(ctx, "a", recs[0].Task.ID)
	for op, err := range checks {
		if !greyerr.Is(err, greyerr.Unavailable) || !errors.Is(err, cause) {
			t.Errorf("%s while unavailable: %v, want Unavailable wrapping the cause", op, err)
		}
	}
	if d.Len() != 2 {
		t.Errorf("an outage changed the records: Len = %d", d.Len())
	}
	d.SetUnavailable(nil)
	if _, err := s.Get(ctx, "a", recs[0].Task.ID); err != nil {
		t.Errorf("after the outage: %v", err)
	}
	n, err := s.DeleteBefore(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 2 || d.Len() != 0 {
		t.Errorf("delete all: %d, %v, Len %d", n, err, d.Len())
	}
}

func TestRegisterAndOpen(t *testing.T) {
	reg := archive.NewRegistry()
	if err := memarchive.Register(reg); err != nil {
		t.Fatal(err)
	}
	a, err := reg.Open(t.Context(), "mem://", archive.OpenOptions{}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Open(t.Context(), "MEM://anything?x=1", archive.OpenOptions{}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Upsert(t.Context(), []archive.Record{archivetest.Make(archivetest.Spec{Tenant: "a"})}); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Count(t.Context(), "a", archive.Filter{}); n != 0 {
		t.Errorf("two mem:// opens share records (%d)", n)
	}
	var x *int
	if a.As(&x) {
		t.Error("As reached something")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(t.Context()); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("ping after close: %v", err)
	}
}
