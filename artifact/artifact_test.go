package artifact_test

import (
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
