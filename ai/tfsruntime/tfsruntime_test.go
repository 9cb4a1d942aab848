package tfsruntime_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/ai/runtimetest"
	"github.com/grey-distributed/grey/ai/tfsruntime"
	"github.com/grey-distributed/grey/ai/tfsruntime/tfstest"
	"github.com/grey-distributed/grey/greyerr"
)

const (
	raiseOn = 13.0
	hangOn  = 42.0
)

func testDoc() memruntime.Doc {
	d := memruntime.MLP(23, 4, 8, 3)
	r, h := raiseOn, hangOn
	d.RaiseOn, d.HangOn = &r, &h
	return d
}

func parse(t testing.TB) *memruntime.Model {
	t.Helper()
	m, err := memruntime.Parse(testDoc().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func spec(name, version string) ai.LoadSpec {
	return ai.LoadSpec{Model: ai.Model{TenantID: "t1", Name: name, Version: version, Framework: ai.TensorFlow, Digest: "sha256:00"}}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func open(t testing.TB, raw string) *tfsruntime.Driver {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tfsruntime.OpenURL(u, ai.OpenOptions{})
	if err != nil {
		t.Fatalf("open %s: %v", raw, err)
	}
	return d
}

func flagged(v float32) []ai.Tensor {
	return []ai.Tensor{memruntime.Tensor([][]float32{{0.5, v, 0, 0}})}
}

func harness(t *testing.T, base string, s ai.LoadSpec, outputs []string) runtimetest.Harness {
	m := parse(t)
	missing := spec("no-such-model", "1")
	return runtimetest.Harness{
		Open: func(t testing.TB) ai.Driver { return open(t, base) },
		Model: runtimetest.Model{
			Spec:      s,
			Inputs:    []runtimetest.TensorSpec{{Name: "x", Datatype: ai.FP32, Shape: []int64{4}}},
			Outputs:   outputs,
			Reference: func(in []ai.Tensor) ([]ai.Tensor, error) { return m.Eval(in, outputs) },
		},
		Raising:   &runtimetest.Fault{Inputs: flagged(raiseOn)},
		Hanging:   &runtimetest.Fault{Inputs: flagged(hangOn)},
		NotAModel: &missing,
	}
}

// The conformance suite against the fake TF Serving (tfstest), in both
// request forms, with a signature of two outputs and one of one output
// (TF Serving's bare answer form), by version number and by label.
func TestConformance(t *testing.T) {
	srv := tfstest.New(
		tfstest.Model{Name: "mlp", Versions: []string{"1", "2"}, Labels: map[string]string{"stable": "1"}, Model: parse(t)},
		tfstest.Model{Name: "mlp-y", Outputs: []string{"y"}, Model: parse(t)},
	)
	defer srv.Close()
	both := []string{"y", "label"}
	for _, tc := range []struct {
		name, url string
		spec      ai.LoadSpec
		outputs   []string
	}{
		{"Columnar", "tfserving+" + srv.URL, spec("mlp", "2"), both},
		{"Row", "tfserving+" + srv.URL + "?format=row", spec("mlp", "1"), both},
		{"Label", "tfserving+" + srv.URL, spec("mlp", "stable"), both},
		{"OneOutputColumnar", "tfserving+" + srv.URL + "?model=single=mlp-y", spec("single", "1"), []string{"y"}},
		{"OneOutputRow", "tfserving+" + srv.URL + "?format=row&versioned=false&model=single=mlp-y", spec("single", "9"), []string{"y"}},
	} {
		t.Run(tc.name, func(t *testing.T) { runtimetest.Run(t, harness(t, tc.url, tc.spec, tc.outputs)) })
	}
}

func TestLoadChecks(t *testing.T) {
	srv := tfstest.New(tfstest.Model{Name: "mlp", Versions: []string{"1"}, Model: parse(t)})
	defer srv.Close()
	d := open(t, "tfserving+"+srv.URL)
	defer d.Close()
	for _, tc := range []struct {
		name string
		spec ai.LoadSpec
		want greyerr.Code
	}{
		{"unknown model", spec("nope", "1"), greyerr.FailedPrecondition},
		{"unknown version", spec("mlp", "3"), greyerr.FailedPrecondition},
		{"unknown label", spec("mlp", "canary"), greyerr.FailedPrecondition},
		{"pytorch model", ai.LoadSpec{Model: ai.Model{Name: "mlp", Version: "1", Framework: ai.PyTorch}}, ""},
		{"cuda", ai.LoadSpec{Device: "cuda", Model: ai.Model{Name: "mlp", Version: "1", Framework: ai.TensorFlow}}, greyerr.FailedPrecondition},
	} {
		s := tc.spec
		s.Key = tc.name
		li, err := d.Load(ctx(t), s)
		if greyerr.CodeOf(err) != tc.want {
			t.Errorf("%s: %v, want code %q", tc.name, err, tc.want)
		}
		if err == nil && (li.Served == nil || li.Served.Name != "mlp" || li.Served.Digest != "") {
			t.Errorf("%s: served %+v, want mlp with no digest", tc.name, li.Served)
		}
	}
	for _, q := range []string{"?digest=require", "?frameworks=pytorch", "?signature=other"} {
		d := open(t, "tfserving+"+srv.URL+q)
		s := spec("mlp", "1")
		s.Key = "k"
		if _, err := d.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) {
			t.Errorf("%s: %v, want FailedPrecondition", q, err)
		}
		d.Close()
	}
}

func TestServerFailures(t *testing.T) {
	srv := tfstest.New(tfstest.Model{Name: "mlp", Model: parse(t)})
	d := open(t, "tfserving+"+srv.URL)
	defer d.Close()
	rt := ai.NewRuntime("t", d)
	s := spec("mlp", "1")
	s.Key = "k"
	if _, err := rt.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	srv.Remove("mlp")
	if _, err := rt.Infer(ctx(t), "k", flagged(0.5), nil); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("infer after the server dropped the model: %v, want Unavailable", err)
	}
	srv.Close()
	if _, err := rt.Infer(ctx(t), "k", flagged(0.5), nil); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("infer with the server gone: %v, want Unavailable", err)
	}
	if _, err := rt.Info(ctx(t)); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("info with the server gone: %v, want Unavailable", err)
	}
	s.Key = "k2"
	if _, err := rt.Load(ctx(t), s); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("load with the server gone: %v, want Unavailable", err)
	}
}

// Nonsense from the server is Internal; a version still loading is
// Unavailable; a signature with a datatype Grey lacks is refused at load.
func TestMalformedAnswers(t *testing.T) {
	var predict, status, sigType string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models/m/versions/1", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"model_version_status":[{"version":"1","state":%q}]}`, status)
	})
	mux.HandleFunc("GET /v1/models/m/versions/1/metadata", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"metadata":{"signature_def":{"signature_def":{"serving_default":{
			"inputs":{"x":{"dtype":"DT_FLOAT","tensor_shape":{"dim":[{"size":"-1"},{"size":"4"}]}}},
			"outputs":{"y":{"dtype":%q,"tensor_shape":{"dim":[{"size":"-1"},{"size":"2"}]}},"z":{"dtype":"DT_INT64","tensor_shape":{"unknown_rank":true}}}}}}}}`, sigType)
	})
	mux.HandleFunc("POST /v1/models/m/versions/1:predict", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, predict)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	d := open(t, "tfserving+"+srv.URL)
	defer d.Close()
	rt := ai.NewRuntime("t", d)
	s := spec("m", "1")
	s.Key = "k"
	status, sigType = "LOADING", "DT_FLOAT"
	if _, err := rt.Load(ctx(t), s); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("a version still loading: %v, want Unavailable", err)
	}
	status, sigType = "AVAILABLE", "DT_STRING"
	if _, err := rt.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("a DT_STRING output: %v, want FailedPrecondition", err)
	}
	sigType = "DT_FLOAT"
	if _, err := rt.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{
		`not json`,
		`{"outputs":{"y":[[1,2]]}}`,             // z missing
		`{"outputs":{"y":[[1,2],[3]],"z":[1]}}`, // ragged
		`{"outputs":{"y":[[1,2]],"z":[1,2]}}`,   // rows disagree
		`{"outputs":{"y":[["a","b"]],"z":[1]}}`, // strings
		`{"outputs":{"y":[[1,2]],"z":[1.5]}}`,   // not an integer
		`{"outputs":{"y":[[1,2]],"z":[99999999999999999999]}}`,
		`{"predictions":[]}`,
	} {
		predict = b
		if _, err := rt.Infer(ctx(t), "k", flagged(0.5), nil); !greyerr.Is(err, greyerr.Internal) {
			t.Errorf("answer %s: %v, want Internal", b, err)
		}
	}
	predict = `{"outputs":{"y":[[1,2]],"z":[[7]]}}`
	out, err := rt.Infer(ctx(t), "k", flagged(0.5), nil)
	if err != nil || len(out) != 2 || out[0].Name != "y" || out[1].Name != "z" || fmt.Sprint(out[1].Shape) != "[1 1]" {
		t.Errorf("a good answer: %+v, %v", out, err)
	}
}

func TestURLs(t *testing.T) {
	r := ai.NewRegistry()
	if err := tfsruntime.Register(r); err != nil {
		t.Fatal(err)
	}
	for _, good := range []string{"tfserving+http://127.0.0.1:8501", "tfserving+https://h:8501/p?format=row&signature=classify&timeout=1s"} {
		rt, err := r.Open(ctx(t), "x", good, ai.OpenOptions{})
		if err != nil {
			t.Errorf("open %s: %v", good, err)
			continue
		}
		rt.Close()
	}
	for _, bad := range []string{"tfserving+grpc://h:1", "tfserving+http://h:1?format=csv", "tfserving+http://h:1?colour=1", "tfserving+http://"} {
		if _, err := r.Open(ctx(t), "x", bad, ai.OpenOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("open %s: %v, want InvalidArgument", bad, err)
		}
	}
}
