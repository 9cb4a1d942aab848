package artifact_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/artifact"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/greyerr"
)

// Two kinds share a bucket without seeing each other's artifacts: models
// stored next to modules are not modules.
func TestKindsAreSeparate(t *testing.T) {
	b, err := memblob.Open(blobstore.Options{Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := artifact.New(b, artifact.Options{Kind: "modules", MaxBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	models, err := artifact.New(b, artifact.Options{Kind: "models", MaxBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a, created, err := models.Put(ctx, "acme", []byte("weights"), nil)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if _, err := mods.Get(ctx, "acme", a.Digest); !greyerr.Is(err, greyerr.NotFound) || !strings.Contains(err.Error(), "module") {
		t.Errorf("a model read as a module: %v", err)
	}
	if l, _ := mods.List(ctx, "acme"); len(l) != 0 {
		t.Errorf("modules list models: %v", l)
	}
	if n, c, _ := models.Usage(ctx, "acme"); n != 7 || c != 1 {
		t.Errorf("usage %d %d", n, c)
	}
	if _, _, err := models.Put(ctx, "acme", []byte("x"), func() error { return greyerr.Invalid("body", "refused by check") }); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("check not applied: %v", err)
	}
	for _, kind := range []string{"", "a/b", "..", "a\x00"} {
		if _, err := artifact.New(b, artifact.Options{Kind: kind, MaxBytes: 1}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("kind %q: %v", kind, err)
		}
	}
	if _, err := artifact.New(b, artifact.Options{Kind: "x"}); err == nil {
		t.Error("no MaxBytes accepted")
	}
}

// PutReader stores what streams in only when it matches the announced
// digest and size; Open streams it back, checked.
func TestPutReaderAndOpen(t *testing.T) {
	b, err := memblob.Open(blobstore.Options{Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var counted int64
	s, err := artifact.New(b, artifact.Options{Kind: "models", MaxBytes: 100, Storage: func(_ context.Context, _ string, delta int64, _ bool) error {
		counted += delta
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data := []byte("model bytes")
	d := artifact.Digest(data)
	// Bytes that do not match what was announced are not kept.
	if _, _, err := s.PutReader(ctx, "acme", d, int64(len(data)), strings.NewReader("other bytes"), nil); !greyerr.Is(err, greyerr.Internal) {
		t.Fatalf("mismatched stream: %v", err)
	}
	if _, err := s.Stat(ctx, "acme", d); !greyerr.Is(err, greyerr.NotFound) || counted != 0 {
		t.Fatalf("after a mismatched stream: %v, counted %d", err, counted)
	}
	if _, _, err := s.PutReader(ctx, "acme", d, 101, strings.NewReader("x"), nil); !greyerr.Is(err, greyerr.TooLarge) {
		t.Fatalf("too large: %v", err)
	}
	a, created, err := s.PutReader(ctx, "acme", d, int64(len(data)), strings.NewReader(string(data)), nil)
	if err != nil || !created || a.Size != int64(len(data)) || counted != a.Size {
		t.Fatalf("PutReader: %+v %v %v (counted %d)", a, created, err, counted)
	}
	rc, err := s.Open(ctx, "acme", d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || string(got) != string(data) {
		t.Fatalf("Open: %q %v", got, err)
	}
	if _, err := s.Open(ctx, "globex", d); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("another tenant's Open: %v", err)
	}
}
