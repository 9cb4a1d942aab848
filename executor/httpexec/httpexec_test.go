package httpexec_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/executor/httpexec"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// env is a single-node engine whose worker pool runs the http kind.
type env struct {
	node *greytest.Node
}

func newEnv(t *testing.T, cfg httpexec.Config) *env {
	t.Helper()
	ex, err := httpexec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.Close)
	n := greytest.NewNode(t, engine.Config{})
	n.Engine.RegisterKinds(httpexec.Kind)
	n.StartWorkers(t, worker.Options{Concurrency: 4, LeaseWait: 200 * time.Millisecond}, map[string]worker.Handler{httpexec.Kind: ex})
	return &env{node: n}
}

// run submits an http task and waits for it to finish.
func (e *env) run(t *testing.T, tenant string, p httpexec.Payload, timeout time.Duration, retries int) *task.Task {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	spec := task.Spec{Kind: httpexec.Kind, Payload: b, Retry: &task.RetryPolicy{MaxRetries: &retries, BaseDelay: task.Duration(time.Millisecond), MaxDelay: task.Duration(time.Millisecond)}}
	if timeout > 0 {
		spec.Timeout = task.Duration(timeout)
	}
	res, err := e.node.Engine.Submit(t.Context(), tenant, []task.Spec{spec}, false)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tk, err := e.node.Engine.Wait(t.Context(), tenant, res.Tasks[0].ID, 10*time.Second)
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		if tk.Status.Terminal() {
			return tk
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still %s", tk.Status)
		}
	}
}

func wantFailure(t *testing.T, tk *task.Task, code string, retryable bool, attempts int, msg string) {
	t.Helper()
	if tk.Status != task.Failed || tk.Error == nil {
		t.Fatalf("status %s result %s, want failed", tk.Status, tk.Result)
	}
	if tk.Error.Code != code || tk.Error.Retryable != retryable || !strings.Contains(tk.Error.Message, msg) {
		t.Fatalf("error %+v, want code %s retryable %v mentioning %q", tk.Error, code, retryable, msg)
	}
	if len(tk.Attempts) != attempts {
		t.Fatalf("%d attempts, want %d", len(tk.Attempts), attempts)
	}
	for _, a := range tk.Attempts {
		if a.Error == nil || a.Error.Code != code || a.Error.Retryable != retryable {
			t.Fatalf("attempt %d recorded %+v, want code %s retryable %v", a.N, a.Error, code, retryable)
		}
	}
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestPostsTheBodyAndRecordsTheResponse(t *testing.T) {
	t.Parallel()
	type request struct {
		method, ctype, auth, taskID string
		body                        []byte
	}
	var mu sync.Mutex
	var got request
	seen := func() request {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got.method, got.ctype, got.auth, got.taskID = r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("X-Grey-Task-Id")
		got.body, _ = io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true,"n":[1,2]}`))
		case "/text":
			_, _ = w.Write([]byte("plain <text>"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	e := newEnv(t, httpexec.Config{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true})

	tk := e.run(t, "acme", httpexec.Payload{URL: srv.URL + "/json", Headers: map[string]string{"Authorization": "Bearer s3cret"}, Body: json.RawMessage(`{"order":42}`)}, 0, 0)
	if tk.Status != task.Completed || string(tk.Result) != `{"ok":true,"n":[1,2]}` {
		t.Fatalf("status %s result %s error %+v", tk.Status, tk.Result, tk.Error)
	}
	if got := seen(); got.method != "POST" || got.ctype != "application/json" || got.auth != "Bearer s3cret" || string(got.body) != `{"order":42}` || got.taskID != tk.ID {
		t.Errorf("server got %+v (body %s)", got, got.body)
	}
	tk = e.run(t, "acme", httpexec.Payload{URL: srv.URL + "/text", Method: "put"}, 0, 0)
	if got := seen(); tk.Status != task.Completed || string(tk.Result) != `"plain \u003ctext\u003e"` || got.method != "PUT" || len(got.body) != 0 {
		t.Fatalf("text: status %s result %s, server saw %s", tk.Status, tk.Result, got.method)
	}
	tk = e.run(t, "acme", httpexec.Payload{URL: srv.URL + "/empty", Method: "GET"}, 0, 0)
	if tk.Status != task.Completed || tk.Result != nil {
		t.Fatalf("empty: status %s result %s", tk.Status, tk.Result)
	}
}

func TestNonPublicAddressesAreRefusedAtDialTime(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(hostPort(t, srv.URL))
	// The hosts are on the allowlist; only the address check refuses them.
	e := newEnv(t, httpexec.Config{AllowHosts: []string{"127.0.0.1", "localhost"}})
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		tk := e.run(t, "acme", httpexec.Payload{URL: u}, 0, 3)
		// Permanent: one attempt although three retries were allowed.
		wantFailure(t, tk, httpexec.CodeSSRFBlocked, false, 1, "loopback address")
	}
	if hits.Load() != 0 {
		t.Errorf("the server was reached %d times", hits.Load())
	}
}

func TestAllowlist(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`"reached"`)) }))
	defer target.Close()
	_, tport, _ := net.SplitHostPort(hostPort(t, target.URL))
	// redirector is allowed for everyone; it redirects to target by name.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+tport+"/", http.StatusFound)
	}))
	defer redirector.Close()
	e := newEnv(t, httpexec.Config{
		AllowHosts:       []string{hostPort(t, redirector.URL)},
		TenantAllowHosts: map[string][]string{"acme": {"localhost:" + tport}},
		AllowPrivate:     true,
	})
	// acme may call target directly and through the redirect.
	for _, u := range []string{"http://localhost:" + tport + "/", redirector.URL} {
		if tk := e.run(t, "acme", httpexec.Payload{URL: u, Method: "GET"}, 0, 0); tk.Status != task.Completed || string(tk.Result) != `"reached"` {
			t.Fatalf("acme %s: %s %s %+v", u, tk.Status, tk.Result, tk.Error)
		}
	}
	// Another tenant may not, and the redirect does not take it there.
	tk := e.run(t, "other", httpexec.Payload{URL: "http://localhost:" + tport + "/"}, 0, 2)
	wantFailure(t, tk, httpexec.CodeHostNotAllowed, false, 1, "is not on tenant other's allowlist")
	tk = e.run(t, "other", httpexec.Payload{URL: redirector.URL, Method: "GET"}, 0, 2)
	wantFailure(t, tk, httpexec.CodeHostNotAllowed, false, 1, "redirect to http://localhost:"+tport)
	// A host on no list at all, and a scheme that is not http(s).
	tk = e.run(t, "acme", httpexec.Payload{URL: "https://example.com/"}, 0, 0)
	wantFailure(t, tk, httpexec.CodeHostNotAllowed, false, 1, "example.com:443")
	tk = e.run(t, "acme", httpexec.Payload{URL: "file:///etc/passwd"}, 0, 0)
	wantFailure(t, tk, httpexec.CodeInvalidPayload, false, 1, "http or https")
}

func TestStatusClasses(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/404":
			http.Error(w, "no such order", http.StatusNotFound)
		case "/503":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 2048)))
		}
	}))
	defer srv.Close()
	e := newEnv(t, httpexec.Config{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true, MaxResponseBytes: 1024})

	// 4xx: permanent, one attempt although retries are allowed.
	tk := e.run(t, "acme", httpexec.Payload{URL: srv.URL + "/404"}, 0, 3)
	wantFailure(t, tk, httpexec.Code4xx, false, 1, "HTTP 404: no such order")
	// 5xx: retried; every attempt records http_5xx.
	tk = e.run(t, "acme", httpexec.Payload{URL: srv.URL + "/503"}, 0, 2)
	wantFailure(t, tk, httpexec.Code5xx, true, 3, "HTTP 503: overloaded")
	// Timeout: retried, code timeout.
	tk = e.run(t, "acme", httpexec.Payload{URL: srv.URL + "/slow"}, 200*time.Millisecond, 1)
	wantFailure(t, tk, "timeout", true, 2, "exceeded its timeout")
	// Too large a response.
	tk = e.run(t, "acme", httpexec.Payload{URL: srv.URL + "/big"}, 0, 0)
	wantFailure(t, tk, httpexec.CodeResponseTooLarge, false, 1, "exceeds 1024 bytes")
	// Connection refused: retried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	_ = ln.Close()
	tk = e.run(t, "acme", httpexec.Payload{URL: closed}, 0, 1)
	wantFailure(t, tk, httpexec.CodeConnection, true, 2, "connection refused")
	// Bad payloads are permanent.
	b := json.RawMessage(`{"url":"http://127.0.0.1/","bogus":1}`)
	res, err := e.node.Engine.Submit(t.Context(), "acme", []task.Spec{{Kind: httpexec.Kind, Payload: b}}, false)
	if err != nil {
		t.Fatal(err)
	}
	greytest.Eventually(t, 10*time.Second, func() bool {
		tk, _ = e.node.Engine.Get(t.Context(), "acme", res.Tasks[0].ID)
		return tk.Status.Terminal()
	})
	wantFailure(t, tk, httpexec.CodeInvalidPayload, false, 1, "bogus")
}
