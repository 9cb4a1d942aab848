package blobstore_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/greyerr"
)

// flaky fails its first n Puts with err, then passes them to the driver.
type flaky struct {
	blobstore.Driver
	n     int
	err   error
	calls int
	caps  *blobstore.Capabilities
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, o blobstore.PutOptions) error {
	f.calls++
	if f.calls <= f.n {
		return f.err
	}
	return f.Driver.Put(ctx, key, r, o)
}

func (f *flaky) Capabilities() blobstore.Capabilities {
	if f.caps != nil {
		return *f.caps
	}
	return f.Driver.Capabilities()
}

func fastRetry() blobstore.RetryOptions {
	return blobstore.RetryOptions{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}
}

func TestRetriesTransientOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := &flaky{Driver: memblob.NewDriver(), n: 2, err: greyerr.New(greyerr.Unavailable, "503 slow down")}
	b, err := blobstore.New(f, blobstore.Options{Name: "t", Registerer: reg, Retry: fastRetry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "k", []byte("v"), nil); err != nil {
		t.Fatalf("put after two transient failures: %v", err)
	}
	if f.calls != 3 {
		t.Errorf("driver called %d times, want 3", f.calls)
	}
	if got := testutil.ToFloat64(mustVec(t, reg, "grey_blob_retries_total")); got != 2 {
		t.Errorf("retries metric = %v, want 2", got)
	}

	// Refused credentials are not retried and keep their code.
	f = &flaky{Driver: memblob.NewDriver(), n: 5, err: greyerr.New(greyerr.PermissionDenied, "InvalidAccessKeyId")}
	b, _ = blobstore.New(f, blobstore.Options{Retry: fastRetry()})
	err = b.Put(t.Context(), "k", []byte("v"), nil)
	if !greyerr.Is(err, greyerr.PermissionDenied) || f.calls != 1 {
		t.Errorf("permission denied: %v after %d calls, want PermissionDenied after 1", err, f.calls)
	}
	// A transient failure that lasts gives up after MaxTries.
	f = &flaky{Driver: memblob.NewDriver(), n: 100, err: greyerr.New(greyerr.Unavailable, "down")}
	b, _ = blobstore.New(f, blobstore.Options{Retry: blobstore.RetryOptions{MaxTries: 3, InitialInterval: time.Millisecond}})
	err = b.Put(t.Context(), "k", []byte("v"), nil)
	if !greyerr.Is(err, greyerr.Unavailable) || f.calls != 3 {
		t.Errorf("lasting outage: %v after %d calls, want Unavailable after 3", err, f.calls)
	}
	// An uncoded driver error is Internal, not retried.
	f = &flaky{Driver: memblob.NewDriver(), n: 5, err: errors.New("driver forgot to code this")}
	b, _ = blobstore.New(f, blobstore.Options{Retry: fastRetry()})
	if err := b.Put(t.Context(), "k", []byte("v"), nil); !greyerr.Is(err, greyerr.Internal) || f.calls != 1 {
		t.Errorf("uncoded: %v after %d calls", err, f.calls)
	}
}

func mustVec(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			c.Add(sum)
			return c
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func TestMetricsPerOperation(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := memblob.Open(blobstore.Options{Name: "m", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A second bucket on the same registerer shares the families.
	if _, err := memblob.Open(blobstore.Options{Name: "m2", Registerer: reg}); err != nil {
		t.Fatalf("second bucket on one registerer: %v", err)
	}
	ctx := t.Context()
	_ = b.Put(ctx, "a", []byte("12345"), nil)
	_, _ = b.Get(ctx, "a", 0)
	_, _ = b.Get(ctx, "missing", 0)
	n, err := testutil.GatherAndCount(reg, "grey_blob_operations_total")
	if err != nil || n != 3 { // put ok, get ok, get not_found
		t.Errorf("operation series = %d, %v; want 3", n, err)
	}
	want := `
# HELP grey_blob_bytes_total Bytes written (put, upload) and read (get, read) through the blob store.
# TYPE grey_blob_bytes_total counter
grey_blob_bytes_total{bucket="m",op="get"} 5
grey_blob_bytes_total{bucket="m",op="put"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "grey_blob_bytes_total"); err != nil {
		t.Error(err)
	}
}

func TestTagsUnsupportedIsUnimplemented(t *testing.T) {
	caps := blobstore.Capabilities{Scheme: "notags", Tags: blobstore.TagsNone}
	f := &flaky{Driver: memblob.NewDriver(), caps: &caps}
	b, err := blobstore.New(f, blobstore.Options{Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "k", []byte("v"), nil); !greyerr.Is(err, greyerr.Unimplemented) {
		t.Errorf("put with tags on a tag-less driver: %v, want Unimplemented", err)
	}
	if _, err := b.SignedURL(t.Context(), "k", "GET", time.Minute, ""); !greyerr.Is(err, greyerr.Unimplemented) {
		t.Errorf("signed URL on a driver without it: %v", err)
	}
}

func TestCostTagValidation(t *testing.T) {
	for _, tags := range []map[string]string{
		{"": "x"},
		{"ok": strings.Repeat("v", 257)},
		{strings.Repeat("k", 129): "v"},
		{"bad\x00key": "v"},
		{"team": "a,b"},
	} {
		if _, err := memblob.Open(blobstore.Options{CostTags: tags}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("tags %q: %v, want InvalidArgument", tags, err)
		}
	}
	many := map[string]string{}
	for _, k := range strings.Split("a b c d e f g h i", " ") {
		many[k] = "v"
	}
	caps := blobstore.Capabilities{Scheme: "s3", Tags: blobstore.TagsNative, MaxTags: 10}
	if _, err := blobstore.New(&flaky{Driver: memblob.NewDriver(), caps: &caps}, blobstore.Options{CostTags: many}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("9 cost tags + tenant + task on a 10-tag driver: %v", err)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "a/b/c.wasm", "tenants/acme/modules/0123", "ünïcode/ok", "a..b", "..a"} {
		if err := blobstore.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/../b", "..", "a/.", "a//b", "a/", "a\x00", "a\tb", "a\\b", "\xc3", strings.Repeat("x", 1025)} {
		if err := blobstore.ValidateKey(k); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("ValidateKey(%q) = %v, want InvalidArgument", k, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	reg := blobstore.NewRegistry()
	if err := memblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := memblob.Register(reg); err == nil {
		t.Error("a scheme registered twice")
	}
	if got := reg.Schemes(); len(got) != 1 || got[0] != "mem" {
		t.Errorf("schemes %v", got)
	}
	for _, u := range []string{"s3://bucket", "gs:///", "::", ""} {
		if err := reg.Check(u); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("Check(%q) = %v", u, err)
		}
	}
	if err := reg.Check("mem://"); err != nil {
		t.Error(err)
	}
}

// FuzzValidateKey: a key ValidateKey accepts never leaves a tenant prefix.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../b", "a\x00", "/x", "..\\x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if blobstore.ValidateKey(key) != nil {
			return
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("accepted %q", key)
			}
		}
		if strings.ContainsAny(key, "\x00\\\n\r") || strings.HasPrefix(key, "/") || len(key) > blobstore.MaxKeyBytes {
			t.Fatalf("accepted %q", key)
		}
	})
}
