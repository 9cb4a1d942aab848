package oipruntime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/ai/oipruntime"
	"github.com/grey-distributed/grey/ai/oipruntime/oiptest"
	"github.com/grey-distributed/grey/ai/runtimetest"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

const (
	raiseOn = 13.0
	hangOn  = 42.0
	digest  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

func testDoc() memruntime.Doc {
	d := memruntime.MLP(11, 4, 8, 3)
	r, h := raiseOn, hangOn
	d.RaiseOn, d.HangOn = &r, &h
	return d
}

func parse(t testing.TB, d memruntime.Doc) *memruntime.Model {
	t.Helper()
	m, err := memruntime.Parse(d.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func spec(name, version string) ai.LoadSpec {
	return ai.LoadSpec{Model: ai.Model{TenantID: "t1", Name: name, Version: version, Framework: ai.PyTorch, Digest: digest}}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func open(t testing.TB, raw string) *oipruntime.Driver {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := oipruntime.OpenURL(u, ai.OpenOptions{})
	if err != nil {
		t.Fatalf("open %s: %v", raw, err)
	}
	return d
}

func flagged(v float32) []ai.Tensor {
	return []ai.Tensor{memruntime.Tensor([][]float32{{0.5, v, 0, 0}})}
}

// harness runs the suite on the server at base; the reference is the mem
// model's Go evaluation (the fake computes with it too; KServe computes
// with numpy, hence the tolerance).
func harness(base string, doc memruntime.Doc, s ai.LoadSpec, tol float64) runtimetest.Harness {
	m, err := memruntime.Parse(doc.Marshal())
	if err != nil {
		panic(err)
	}
	missing := spec("no-such-model", s.Model.Version)
	return runtimetest.Harness{
		Open: func(t testing.TB) ai.Driver { return open(t, base) },
		Model: runtimetest.Model{
			Spec:      s,
			Inputs:    []runtimetest.TensorSpec{{Name: "x", Datatype: ai.FP32, Shape: []int64{4}}},
			Outputs:   []string{"y", "label"},
			Reference: func(in []ai.Tensor) ([]ai.Tensor, error) { return m.Eval(in, nil) },
			Tolerance: tol,
		},
		Raising:   &runtimetest.Fault{Inputs: flagged(raiseOn)},
		Hanging:   &runtimetest.Fault{Inputs: flagged(hangOn)},
		NotAModel: &missing,
	}
}

func TestConformanceFake(t *testing.T) {
	srv := oiptest.New(oiptest.Model{Name: "mlp", Versions: []string{"1", "2"}, Digest: digest, Model: parse(t, testDoc())})
	defer srv.Close()
	runtimetest.Run(t, harness("oip+"+srv.URL, testDoc(), spec("mlp", "1"), 0))
}

func TestConformanceFakeUnversionedMapped(t *testing.T) {
	srv := oiptest.New(oiptest.Model{Name: "server-mlp", Model: parse(t, testDoc())})
	defer srv.Close()
	runtimetest.Run(t, harness("oip+"+srv.URL+"?versioned=false&model=mlp=server-mlp", testDoc(), spec("mlp", "7"), 0))
}

// The suite again with every request in binary tensors (binary_min_bytes=0):
// the fake reads them and answers binary outputs, which the driver reads.
func TestConformanceFakeBinary(t *testing.T) {
	srv := oiptest.New(oiptest.Model{Name: "mlp", Versions: []string{"1", "2"}, Digest: digest, Model: parse(t, testDoc())})
	defer srv.Close()
	runtimetest.Run(t, harness("oip+"+srv.URL+"?binary_min_bytes=0", testDoc(), spec("mlp", "1"), 0))
	if srv.BinaryInfers.Load() == 0 || srv.BinaryInfers.Load() != srv.Infers.Load() {
		t.Errorf("%d of %d inferences were binary, want all", srv.BinaryInfers.Load(), srv.Infers.Load())
	}
}

// Inputs go binary from binary_min_bytes on (64 KiB by default), JSON below
// it and never with binary_min_bytes=off; a bad value is refused.
func TestBinaryThreshold(t *testing.T) {
	srv := oiptest.New(oiptest.Model{Name: "mlp", Versions: []string{"1"}, Digest: digest, Model: parse(t, testDoc())})
	defer srv.Close()
	rows := func(n int) []ai.Tensor {
		x := make([][]float32, n)
		for i := range x {
			x[i] = []float32{0.1, 0.2, float32(i%7) * 0.01, 0}
		}
		return []ai.Tensor{memruntime.Tensor(x)}
	}
	for _, c := range []struct {
		query  string
		rows   int
		binary bool
	}{
		{"", 16, false},
		{"", 4096, true}, // 64 KiB of inputs
		{"?binary_min_bytes=off", 4096, false},
		{"?binary_min_bytes=100", 16, true},
	} {
		d := open(t, "oip+"+srv.URL+c.query)
		s := spec("mlp", "1")
		s.Key = "k"
		if _, err := d.Load(ctx(t), s); err != nil {
			t.Fatal(err)
		}
		before := srv.BinaryInfers.Load()
		in := rows(c.rows)
		out, err := d.Infer(ctx(t), "k", in, []string{"y"})
		if err != nil {
			t.Fatalf("%q %d rows: %v", c.query, c.rows, err)
		}
		want, err := parse(t, testDoc()).Infer(ctx(t), in, []string{"y"})
		if err != nil || len(out) != 1 || !bytes.Equal(out[0].Data, want[0].Data) || out[0].Shape[0] != int64(c.rows) {
			t.Fatalf("%q %d rows: outputs differ from the model's (%v)", c.query, c.rows, err)
		}
		if got := srv.BinaryInfers.Load() > before; got != c.binary {
			t.Errorf("%q with %d rows: binary %v, want %v", c.query, c.rows, got, c.binary)
		}
		_ = d.Close()
	}
	for _, q := range []string{"?binary_min_bytes=-1", "?binary_min_bytes=lots"} {
		u, _ := url.Parse("oip+" + srv.URL + q)
		if _, err := oipruntime.OpenURL(u, ai.OpenOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", q, err)
		}
	}
}

// TestConformanceKServe runs the suite against a real KServe model server
// (KServe's Python ModelServer, v2 REST), started here with a numpy MLP
// (testdata/kserve_mlp.py) from GREY_TEST_KSERVE_URL's python.
func TestConformanceKServe(t *testing.T) {
	base := startKServe(t, testDoc())
	runtimetest.Run(t, harness(base, testDoc(), spec("mlp", "1"), 1e-6))
	// KServe takes binary tensors (the binary data extension) and answers
	// binary outputs: the suite again with every request binary.
	t.Run("binary", func(t *testing.T) {
		runtimetest.Run(t, harness(base+"&binary_min_bytes=0", testDoc(), spec("mlp", "1"), 1e-6))
	})
	// KServe reports no digest: the load says so, and digest=require
	// refuses it.
	d := open(t, base)
	defer d.Close()
	s := spec("mlp", "1")
	s.Key = "k"
	li, err := d.Load(ctx(t), s)
	if err != nil || li.Served == nil || li.Served.Digest != "" || li.Served.Name != "mlp" {
		t.Errorf("load from kserve: %+v, %v; want Served naming mlp with no digest", li, err)
	}
	strict := open(t, base+"&digest=require")
	defer strict.Close()
	if _, err := strict.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("digest=require against kserve: %v, want FailedPrecondition", err)
	}
	versioned := open(t, strings.Replace(base, "versioned=false", "versioned=true", 1))
	defer versioned.Close()
	if _, err := versioned.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), "versioned=false") {
		t.Errorf("a versioned path against kserve: %v, want FailedPrecondition naming versioned=false", err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startKServe starts KServe's model server on a free port serving doc as
// "mlp", and returns the runtime URL for it.
func startKServe(t testing.TB, doc memruntime.Doc) string {
	t.Helper()
	py := strings.TrimPrefix(testenv.ServiceURL(t, "kserve"), "file://")
	dir := t.TempDir()
	docPath := filepath.Join(dir, "model.json")
	if err := os.WriteFile(docPath, doc.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("testdata/kserve_mlp.py")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(py, script, docPath, "mlp", "-", "--http_port", fmt.Sprint(port), "--grpc_port", fmt.Sprint(freePort(t)))
	logf, err := os.Create(filepath.Join(dir, "kserve.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kserve: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	ready := fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", port)
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("kserve exited before it was ready:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("kserve not ready after 90s:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Sprintf("oip+http://127.0.0.1:%d?versioned=false", port)
}

func TestLoadChecks(t *testing.T) {
	other := "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	srv := oiptest.New(
		oiptest.Model{Name: "mlp", Versions: []string{"1"}, Digest: digest, Model: parse(t, testDoc())},
		oiptest.Model{Name: "plain", Versions: []string{"1"}, Model: parse(t, testDoc())},
		oiptest.Model{Name: "other", Versions: []string{"1"}, Digest: other, Model: parse(t, testDoc())},
	)
	defer srv.Close()
	d := open(t, "oip+"+srv.URL)
	defer d.Close()
	for _, tc := range []struct {
		name string
		spec ai.LoadSpec
		want greyerr.Code
	}{
		{"unknown model", spec("nope", "1"), greyerr.FailedPrecondition},
		{"unknown version", spec("mlp", "2"), greyerr.FailedPrecondition},
		{"digest mismatch", spec("other", "1"), greyerr.FailedPrecondition},
		{"digest agrees", spec("mlp", "1"), ""},
		{"no digest reported", spec("plain", "1"), ""},
	} {
		s := tc.spec
		s.Key = tc.name
		li, err := d.Load(ctx(t), s)
		if greyerr.CodeOf(err) != tc.want {
			t.Errorf("%s: %v, want code %q", tc.name, err, tc.want)
		}
		if err == nil && (li.Served == nil || li.Served.Server == "" || li.Served.Name != s.Model.Name || li.Served.Version != "1") {
			t.Errorf("%s: served %+v", tc.name, li.Served)
		}
		if tc.name == "digest agrees" && li.Served.Digest != digest {
			t.Errorf("digest agrees: served digest %q", li.Served.Digest)
		}
	}
	strict := open(t, "oip+"+srv.URL+"?digest=require")
	defer strict.Close()
	s := spec("plain", "1")
	s.Key = "k"
	if _, err := strict.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("digest=require on a model reporting none: %v", err)
	}
	s = spec("mlp", "1")
	s.Key = "k"
	if _, err := strict.Load(ctx(t), s); err != nil {
		t.Errorf("digest=require on a model reporting its digest: %v", err)
	}
	tfOnly := open(t, "oip+"+srv.URL+"?frameworks=tensorflow")
	defer tfOnly.Close()
	if _, err := tfOnly.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("a pytorch model on a tensorflow-only runtime: %v", err)
	}
}

func TestServerFailures(t *testing.T) {
	srv := oiptest.New(oiptest.Model{Name: "mlp", Versions: []string{"1"}, Model: parse(t, testDoc())})
	d := open(t, "oip+"+srv.URL)
	defer d.Close()
	rt := ai.NewRuntime("t", d)
	s := spec("mlp", "1")
	s.Key = "k"
	if _, err := rt.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	in := flagged(0.25)
	srv.SetReady(false)
	if _, err := rt.Info(ctx(t)); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("info while the server is not ready: %v, want Unavailable", err)
	}
	s2 := s
	s2.Key = "k2"
	if _, err := rt.Load(ctx(t), s2); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("load while the server is not ready: %v, want Unavailable", err)
	}
	if _, err := rt.Infer(ctx(t), "k", in, nil); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("infer while the server is not ready: %v, want Unavailable", err)
	}
	srv.SetReady(true)
	if _, err := rt.Infer(ctx(t), "k", in, nil); err != nil {
		t.Errorf("infer once ready again: %v", err)
	}
	srv.Remove("mlp")
	if _, err := rt.Infer(ctx(t), "k", in, nil); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("infer after the server dropped the model: %v, want Unavailable", err)
	}
	srv.Close()
	if _, err := rt.Infer(ctx(t), "k", in, nil); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("infer with the server gone: %v, want Unavailable", err)
	}
	if _, err := rt.Info(ctx(t)); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("info with the server gone: %v, want Unavailable", err)
	}
	if _, err := rt.Load(ctx(t), s2); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("load with the server gone: %v, want Unavailable", err)
	}
}

// A server answering nonsense is Internal (never the caller's
// InvalidArgument), and a timeout without a deadline is the runtime's.
func TestMalformedAnswersAndTimeout(t *testing.T) {
	var body string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/models/m/versions/1/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"ready":true}`) })
	mux.HandleFunc("GET /v2/models/m/versions/1", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"name":"m"}`) })
	mux.HandleFunc("POST /v2/models/m/versions/1/infer", func(w http.ResponseWriter, r *http.Request) {
		if body == "hang" {
			_, _ = io.Copy(io.Discard, r.Body) // the server notices a client gone only once the body is read
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, body)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	d := open(t, "oip+"+srv.URL+"?timeout=200ms")
	defer d.Close()
	rt := ai.NewRuntime("t", d)
	s := spec("m", "1")
	s.Key = "k"
	if _, err := rt.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	in := flagged(0.25)
	for _, b := range []string{
		`not json`,
		`{"outputs":[{"name":"y","shape":[1,2],"datatype":"BYTES","data":["a","b"]}]}`,
		`{"outputs":[{"name":"y","shape":[1,2],"datatype":"FP32","data":[1]}]}`,
		`{"outputs":[{"name":"y","shape":[2,1],"datatype":"FP32","data":[1,2]}]}`,
	} {
		body = b
		_, err := rt.Infer(ctx(t), "k", in, nil)
		if !greyerr.Is(err, greyerr.Internal) {
			t.Errorf("answer %s: %v, want Internal", b, err)
		}
	}
	body = `{"outputs":[{"name":"y","shape":[1,1],"datatype":"FP32","data":[1]}]}`
	if _, err := rt.Infer(ctx(t), "k", in, []string{"z"}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("an output the server did not give: %v, want InvalidArgument", err)
	}
	body = "hang"
	start := time.Now()
	_, err := rt.Infer(context.Background(), "k", in, nil)
	if !greyerr.Is(err, greyerr.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("a hanging server without a deadline: %v after %v, want DeadlineExceeded after timeout=200ms", err, time.Since(start))
	}
}

func TestURLs(t *testing.T) {
	r := ai.NewRegistry()
	if err := oipruntime.Register(r); err != nil {
		t.Fatal(err)
	}
	for _, good := range []string{
		"oip+http://127.0.0.1:8000",
		"oip+https://models.example:443/prefix?model=mlp=server-mlp&model=b=c&versioned=false&digest=require&frameworks=pytorch&devices=cuda:0&timeout=5s&max_response_bytes=1000",
	} {
		rt, err := r.Open(ctx(t), "x", good, ai.OpenOptions{})
		if err != nil {
			t.Errorf("open %s: %v", good, err)
			continue
		}
		rt.Close()
	}
	for _, bad := range []string{
		"oip+ftp://h:1", "oip+http://", "oip+http://h:1?model=mlp", "oip+http://h:1?model=BAD=x",
		"oip+http://h:1?versioned=maybe", "oip+http://h:1?digest=trust", "oip+http://h:1?frameworks=onnx",
		"oip+http://h:1?devices=tpu", "oip+http://h:1?timeout=-1s", "oip+http://h:1?max_response_bytes=0",
		"oip+http://h:1?ca_file=/x", "oip+https://h:1?ca_file=/no/such/file", "oip+http://h:1?colour=blue",
	} {
		if _, err := r.Open(ctx(t), "x", bad, ai.OpenOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("open %s: %v, want InvalidArgument", bad, err)
		}
	}
}

// The name mapping and the path prefix reach the server.
func TestPrefixAndMapping(t *testing.T) {
	srv := oiptest.New(oiptest.Model{Name: "server-mlp", Versions: []string{"3"}, Model: parse(t, testDoc())})
	defer srv.Close()
	front := httptest.NewServer(http.StripPrefix("/serving", srv.Config.Handler))
	defer front.Close()
	d := open(t, "oip+"+front.URL+"/serving/?model=mlp=server-mlp")
	defer d.Close()
	s := spec("mlp", "3")
	s.Key = "k"
	if _, err := d.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Infer(ctx(t), "k", flagged(0.5), nil); err != nil {
		t.Fatal(err)
	}
	if srv.Infers.Load() != 1 {
		t.Errorf("the server saw %d inferences, want 1", srv.Infers.Load())
	}
}

// A bearer token from token_file, or basic credentials in the URL, reach
// the server; errors and the served model never name the password.
func TestCredentials(t *testing.T) {
	srv := oiptest.New(oiptest.Model{Name: "mlp", Versions: []string{"1"}, Model: parse(t, testDoc())})
	defer srv.Close()
	var mu sync.Mutex
	var seenAll []string
	seenFirst := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seenAll) == 0 {
			return ""
		}
		return seenAll[0]
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenAll = append(seenAll, r.Header.Get("Authorization"))
		mu.Unlock()
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := spec("mlp", "1")
	s.Key = "k"
	d := open(t, "oip+"+front.URL+"?token_file="+tok)
	if _, err := d.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if got := seenFirst(); got != "Bearer s3cret-token" {
		t.Errorf("authorization header %q, want the bearer token", got)
	}
	mu.Lock()
	seenAll = nil
	mu.Unlock()
	d = open(t, strings.Replace("oip+"+front.URL, "://", "://alice:pw-xyz@", 1))
	defer d.Close()
	li, err := d.Load(ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := seenFirst(); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("authorization header %q, want basic credentials", got)
	}
	if strings.Contains(li.Served.Server, "pw-xyz") {
		t.Errorf("the served server %q names the password", li.Served.Server)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	for _, bad := range []string{"?token_file=/no/such/file", "?token_file=" + empty} {
		u, _ := url.Parse("oip+" + front.URL + bad)
		if _, err := oipruntime.OpenURL(u, ai.OpenOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", bad, err)
		}
	}
}
