package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

func newClient(t *testing.T, servers string, opts ...Option) *Client {
	t.Helper()
	c, err := New(servers, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", servers, err)
	}
	return c
}

// deadURL returns a URL on which nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		servers string
		opts    []Option
		want    []string
		wantErr string
	}{
		{servers: "http://a:1", want: []string{"http://a:1"}},
		{servers: " http://a:1/ , b:2,,https://c/prefix/ ", want: []string{"http://a:1", "http://b:2", "https://c/prefix"}},
		{servers: "", wantErr: "servers"},
		{servers: " , ", wantErr: "servers"},
		{servers: "ftp://a", wantErr: "servers"},
		{servers: "http://", wantErr: "servers"},
		{servers: "http://a", opts: []Option{WithTenant("Bad Tenant")}, wantErr: "tenant"},
	}
	for _, tc := range tests {
		c, err := New(tc.servers, tc.opts...)
		if tc.wantErr != "" {
			var ge *greyerr.Error
			if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != tc.wantErr {
				t.Errorf("New(%q) = %v, want invalid_argument on %s", tc.servers, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tc.servers, err)
			continue
		}
		if got := c.Servers(); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("New(%q).Servers() = %q, want %q", tc.servers, got, tc.want)
		}
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	c := newClient(t, f.URL(), WithTenant("acme"), WithToken("s3cret"), WithUserAgent("test-agent"))
	if _, err := c.Submit(t.Context(), task.Spec{Kind: "echo"}); err != nil {
		t.Fatal(err)
	}
	h := f.lastHeader()
	for k, want := range map[string]string{
		"X-Grey-Tenant": "acme",
		"Authorization": "Bearer s3cret",
		"User-Agent":    "test-agent",
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}

	// Without options, neither tenant nor token is sent.
	c = newClient(t, f.URL())
	if c.Tenant() != "default" {
		t.Errorf("Tenant() = %q, want default", c.Tenant())
	}
	if _, err := c.List(t.Context(), ListOptions{}); err != nil {
		t.Fatal(err)
	}
	h = f.lastHeader()
	if h.Get("X-Grey-Tenant") != "" || h.Get("Authorization") != "" || h.Get("User-Agent") != DefaultUserAgent {
		t.Errorf("unexpected headers %v", h)
	}
}

func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	ctx := t.Context()
	c := newClient(t, f.URL(), WithTenant("acme"))

	sub, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(`{"a":1}`), IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if sub.ID == "" || sub.Status != task.Pending || sub.TenantID != "acme" || sub.Type != task.Stateless {
		t.Fatalf("Submit = %+v", sub)
	}
	again, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(`{"a":1}`), IdempotencyKey: "k1"})
	if err != nil || again.ID != sub.ID {
		t.Fatalf("idempotent Submit = %v, %v; want %s", again, err, sub.ID)
	}
	got, err := c.Get(ctx, sub.ID)
	if err != nil || got.ID != sub.ID || string(got.Payload) != `{"a":1}` {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	// Another tenant does not see it.
	other := newClient(t, f.URL(), WithTenant("other"))
	if _, err := other.Get(ctx, sub.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("Get from another tenant = %v, want not_found", err)
	}

	cancelled, err := c.Cancel(ctx, sub.ID)
	if err != nil || cancelled.Status != task.Cancelled {
		t.Fatalf("Cancel = %+v, %v", cancelled, err)
	}
	if _, err := c.Cancel(ctx, sub.ID); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("second Cancel = %v, want failed_precondition", err)
	}
	if _, err := c.Get(ctx, ""); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("Get(\"\") = %v, want invalid_argument", err)
	}
}

func TestSubmitBatch(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	c := newClient(t, f.URL())
	specs := []task.Spec{{Kind: "a"}, {Kind: "b"}, {Kind: "c"}}
	ts, err := c.SubmitBatch(t.Context(), specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("got %d tasks", len(ts))
	}
	for i, tk := range ts {
		if tk.Kind != specs[i].Kind {
			t.Errorf("task %d kind %q, want %q (request order)", i, tk.Kind, specs[i].Kind)
		}
	}
	_, err = c.SubmitBatch(t.Context(), []task.Spec{{Kind: "a"}, {Kind: "Bad Kind"}})
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != "tasks[1].kind" {
		t.Fatalf("invalid batch = %#v, want invalid_argument on tasks[1].kind", err)
	}
}

func TestErrorDecoding(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/tasks":
			w.Header().Set("Retry-After", "3")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"code":"resource_exhausted","message":"queued quota exceeded","reason":"max_queued"}`)
		case "/api/v1/tasks/batch":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code":"invalid_argument","message":"must be between 0 and 10","field":"tasks[2].priority"}`)
		case "/api/v1/cluster":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		case "/api/v1/cluster/nodes":
			w.WriteHeader(http.StatusNotFound)
		case "/readyz":
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"code":"unavailable","message":"no leader"}`)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"tasks": [`) // truncated JSON
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	ctx := t.Context()

	check := func(name string, err error, code greyerr.Code, field, reason string, retryAfter time.Duration) {
		t.Helper()
		var ge *greyerr.Error
		if !errors.As(err, &ge) {
			t.Fatalf("%s: error %v (%T) is not a *greyerr.Error", name, err, err)
		}
		if ge.Code != code || ge.Field != field || ge.Reason != reason || ge.RetryAfter != retryAfter {
			t.Errorf("%s: got code=%s field=%q reason=%q retry_after=%s, want %s %q %q %s",
				name, ge.Code, ge.Field, ge.Reason, ge.RetryAfter, code, field, reason, retryAfter)
		}
	}
	_, err := c.Submit(ctx, task.Spec{Kind: "x"})
	check("429", err, greyerr.ResourceExhausted, "", "max_queued", 3*time.Second)
	if !strings.Contains(err.Error(), "queued quota exceeded") {
		t.Errorf("message lost: %v", err)
	}
	_, err = c.SubmitBatch(ctx, []task.Spec{{Kind: "x"}})
	check("400", err, greyerr.InvalidArgument, "tasks[2].priority", "", 0)
	_, err = c.Cluster(ctx)
	check("502 html", err, greyerr.Internal, "", "", 0)
	if !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("502 message = %v", err)
	}
	_, err = c.Nodes(ctx)
	check("404 empty", err, greyerr.NotFound, "", "", 0)
	err = c.Ready(ctx)
	check("503", err, greyerr.Unavailable, "", "", 2*time.Second)
	_, err = c.Get(ctx, "x")
	check("bad JSON", err, greyerr.Internal, "", "", 0)
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"7":                             7 * time.Second,
		" 12 ":                          12 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:04:00 GMT": 0, // in the past
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestFailover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	t.Run("dead then live", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t)
		c := newClient(t, deadURL(t)+","+f.URL())
		// POST fails over too: the dead server never saw a connection.
		tk, err := c.Submit(ctx, task.Spec{Kind: "echo"})
		if err != nil {
			t.Fatalf("Submit with a dead first server: %v", err)
		}
		if _, err := c.Get(ctx, tk.ID); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got := c.preferred.Load(); got != 1 {
			t.Errorf("preferred server = %d, want 1 (the one that answered)", got)
		}
	})

	t.Run("503 then live", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Retry-After", "1")
			writeErr(w, greyerr.New(greyerr.Unavailable, "not the leader"))
		}))
		t.Cleanup(unavailable.Close)
		f := newFakeServer(t)
		c := newClient(t, unavailable.URL+","+f.URL())
		if _, err := c.Submit(ctx, task.Spec{Kind: "echo"}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		if _, err := c.List(ctx, ListOptions{}); err != nil {
			t.Fatalf("List: %v", err)
		}
		if hits.Load() != 1 {
			t.Errorf("503 server hit %d times, want 1 (sticky to the live one)", hits.Load())
		}
	})

	t.Run("all down", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, deadURL(t)+","+deadURL(t))
		_, err := c.Get(ctx, "00000000-0000-7000-8000-000000000001")
		if !greyerr.Is(err, greyerr.Unavailable) {
			t.Fatalf("Get with all servers down = %v, want unavailable", err)
		}
	})

	t.Run("other errors do not fail over", func(t *testing.T) {
		t.Parallel()
		f1, f2 := newFakeServer(t), newFakeServer(t)
		c := newClient(t, f1.URL()+","+f2.URL())
		if _, err := c.Get(ctx, "00000000-0000-7000-8000-000000000001"); !greyerr.Is(err, greyerr.NotFound) {
			t.Fatalf("Get = %v, want not_found", err)
		}
		if n := len(f2.headers); n != 0 {
			t.Errorf("second server got %d requests, want 0", n)
		}
	})

	t.Run("context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		c := newClient(t, deadURL(t))
		if _, err := c.Get(ctx, "x"); !greyerr.Is(err, greyerr.Canceled) {
			t.Fatalf("Get with cancelled ctx = %v, want canceled", err)
		}
	})
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	ctx := t.Context()
	c := newClient(t, f.URL(), WithTenant("acme"))
	var ids []string
	for i := range 25 {
		kind := "even"
		if i%2 == 1 {
			kind = "odd"
		}
		tk, err := c.Submit(ctx, task.Spec{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	f.finish(ids[0], task.Completed)

	// Page by hand: newest first, 10 at a time.
	var got []string
	opts := ListOptions{Limit: 10}
	pages := 0
	for {
		p, err := c.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tk := range p.Tasks {
			got = append(got, tk.ID)
		}
		if p.NextCursor == "" {
			break
		}
		opts.Cursor = p.NextCursor
	}
	if pages != 3 || len(got) != 25 || got[0] != ids[24] || got[24] != ids[0] {
		t.Fatalf("paged %d pages, %d tasks (first %s, last %s)", pages, len(got), got[0], got[len(got)-1])
	}

	// ListAll with filters.
	n := 0
	for tk, err := range c.ListAll(ctx, ListOptions{Kind: "even", Status: []task.Status{task.Pending}, Limit: 4}) {
		if err != nil {
			t.Fatal(err)
		}
		if tk.Kind != "even" || tk.Status != task.Pending {
			t.Errorf("filter leaked %s %s", tk.Kind, tk.Status)
		}
		n++
	}
	if n != 12 { // 13 even, one completed
		t.Errorf("ListAll yielded %d, want 12", n)
	}

	// Breaking out of ListAll stops fetching.
	for range c.ListAll(ctx, ListOptions{Limit: 1}) {
		break
	}

	// An error is yielded once.
	errs := 0
	for _, err := range c.ListAll(ctx, ListOptions{Limit: 5000}) {
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("ListAll bad limit: %v", err)
		}
		errs++
	}
	if errs != 1 {
		t.Errorf("errors yielded %d times", errs)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	ctx := t.Context()
	c := newClient(t, f.URL())
	c.waitPoll = 20 * time.Millisecond // several polls before the finish

	tk, err := c.Submit(ctx, task.Spec{Kind: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		f.finish(tk.ID, task.Completed)
	}()
	done, err := c.Wait(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != task.Completed || string(done.Result) != `{"ok":true}` {
		t.Fatalf("Wait = %s %s", done.Status, done.Result)
	}

	// A context that ends first returns the last-seen task with its error.
	tk2, err := c.Submit(ctx, task.Spec{Kind: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	last, err := c.Wait(wctx, tk2.ID)
	if !errors.Is(err, context.DeadlineExceeded) || last == nil || last.Status != task.Pending {
		t.Fatalf("Wait past deadline = %v, %v; want the pending task and deadline exceeded", last, err)
	}

	// Unknown tasks fail at once.
	if _, err := c.Wait(ctx, "00000000-0000-7000-8000-999999999999"); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("Wait unknown = %v", err)
	}
}

func TestWaitRidesOutUnavailable(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("timeout") == "" {
			t.Errorf("wait without timeout: %s", r.URL)
		}
		n := calls.Add(1)
		tk := task.Task{ID: "t1", Spec: task.Spec{Kind: "k"}, Status: task.Running}
		switch n {
		case 1:
			writeErr(w, greyerr.New(greyerr.Unavailable, "electing"))
			return
		case 2:
			// non-terminal answer (poll timeout)
		default:
			tk.Status = task.Failed
			tk.Error = &task.Error{Message: "boom"}
		}
		writeJSON(w, http.StatusOK, tk)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	got, err := c.Wait(t.Context(), "t1")
	if err != nil || got.Status != task.Failed || got.Error == nil {
		t.Fatalf("Wait = %+v, %v", got, err)
	}
	if calls.Load() != 3 {
		t.Errorf("calls = %d, want 3", calls.Load())
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	ctx := t.Context()
	c := newClient(t, f.URL(), WithTenant("acme"))
	other := newClient(t, f.URL(), WithTenant("other"))

	var ids []string
	for range 3 {
		tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(`"big"`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	otherTask, err := other.Submit(ctx, task.Spec{Kind: "echo"})
	if err != nil {
		t.Fatal(err)
	}

	connected := make(chan struct{})
	stop := errors.New("stop")
	var got []*task.Task
	errc := make(chan error, 1)
	go func() {
		opts := WatchOptions{
			Status:    []task.Status{task.Completed, task.Failed, task.Cancelled},
			OnConnect: func() { close(connected) },
		}
		errc <- c.Watch(ctx, opts, func(tk *task.Task) error {
			got = append(got, tk)
			if len(got) == 2 {
				return stop
			}
			return nil
		})
	}()
	<-connected
	f.finish(otherTask.ID, task.Completed) // another tenant: not seen
	f.finish(ids[0], task.Completed)
	f.finish(ids[1], task.Failed)
	f.finish(ids[2], task.Completed) // after stop: not delivered
	select {
	case err := <-errc:
		if err != stop {
			t.Fatalf("Watch = %v, want the callback's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return")
	}
	if len(got) != 2 || got[0].ID != ids[0] || got[0].Status != task.Completed || got[1].ID != ids[1] || got[1].Status != task.Failed {
		t.Fatalf("events = %v", got)
	}
	if got[0].Payload != nil {
		t.Errorf("event carries payload %s", got[0].Payload)
	}
	if h := f.lastHeader(); h.Get("Accept") != "text/event-stream" {
		t.Errorf("Accept = %q", h.Get("Accept"))
	}

	// Cancelling the context ends the watch with its error.
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		for f.watcherCount() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if err := c.Watch(wctx, WatchOptions{}, func(*task.Task) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch after cancel = %v", err)
	}

	// A bad filter is not retried.
	err = c.Watch(ctx, WatchOptions{Status: []task.Status{"done"}}, func(*task.Task) error { return nil })
	if !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("Watch bad filter = %v", err)
	}
}

// TestWatchParsing feeds the SSE parser edge cases and a reconnect.
func TestWatchParsing(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("kind") != "echo" || r.URL.Query().Get("status") != "completed,failed" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		switch conns.Add(1) {
		case 1:
			fmt.Fprint(w, ": ping\n\n")
			fmt.Fprint(w, "event: hello\ndata: {\"ignored\":true}\n\n")                                     // other event types are ignored
			fmt.Fprint(w, "event: task\r\ndata: {\"id\":\"a\",\r\ndata: \"status\":\"completed\"}\r\n\r\n") // CRLF, two data lines
			fmt.Fprint(w, "event:task\ndata:{\"id\":\"b\",\"status\":\"failed\"}\nid: 7\n\n")               // no space after colon
			fmt.Fprint(w, "data: {\"id\":\"nope\"}\n\n")                                                    // no event name: message, ignored
			// the server closes the stream: the client reconnects
		default:
			fmt.Fprint(w, "event: task\ndata: {\"id\":\"c\",\"status\":\"completed\"}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	var (
		mu       sync.Mutex
		got      []string
		connects int
	)
	done := errors.New("done")
	err := c.Watch(t.Context(), WatchOptions{
		Status:    []task.Status{task.Completed, task.Failed},
		Kind:      "echo",
		OnConnect: func() { connects++ },
	}, func(tk *task.Task) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, tk.ID+"="+string(tk.Status))
		if len(got) == 3 {
			return done
		}
		return nil
	})
	if err != done {
		t.Fatalf("Watch = %v", err)
	}
	if strings.Join(got, " ") != "a=completed b=failed c=completed" || connects != 2 {
		t.Fatalf("events %v, connects %d", got, connects)
	}
}

func TestWatchIdleReconnect(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if conns.Add(1) == 2 {
			fmt.Fprint(w, "event: task\ndata: {\"id\":\"x\",\"status\":\"completed\"}\n\n")
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent: no pings
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	c.watchIdle = 50 * time.Millisecond
	done := errors.New("done")
	err := c.Watch(t.Context(), WatchOptions{}, func(*task.Task) error { return done })
	if err != done || conns.Load() != 2 {
		t.Fatalf("Watch = %v after %d connections", err, conns.Load())
	}
}

func TestCoordinator(t *testing.T) {
	t.Parallel()
	deadline := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		switch r.URL.Path {
		case "/api/v1/workers/lease":
			var req worker.LeaseRequest
			json.NewDecoder(r.Body).Decode(&req)
			if req.WorkerID != "w1" || req.Max != 2 || req.Wait.D() != 5*time.Second || len(req.Kinds) != 1 {
				t.Errorf("lease request %+v", req)
			}
			writeJSON(w, 200, worker.LeaseResponse{
				Tasks:    []worker.Assignment{{TaskID: "t1", TenantID: "acme", Kind: "echo", Attempt: 1, Timeout: task.Duration(time.Second), LeaseDeadline: deadline}},
				LeaseTTL: task.Duration(10 * time.Second),
			})
		case "/api/v1/workers/heartbeat":
			var req worker.HeartbeatRequest
			json.NewDecoder(r.Body).Decode(&req)
			writeJSON(w, 200, worker.HeartbeatResponse{Lost: []worker.LostLease{{LeaseRef: req.Leases[0], Reason: "cancelled"}}})
		case "/api/v1/workers/complete":
			var req worker.CompleteRequest
			json.NewDecoder(r.Body).Decode(&req)
			res := worker.CompleteResponse{Results: []worker.ReportResult{}}
			for _, rep := range req.Reports {
				res.Results = append(res.Results, worker.ReportResult{TaskID: rep.TaskID, Accepted: rep.Attempt == 1, Reason: "stale_attempt"})
			}
			writeJSON(w, 200, res)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	ctx := t.Context()
	var coord worker.Coordinator = c

	lr, err := coord.Lease(ctx, &worker.LeaseRequest{WorkerID: "w1", Kinds: []string{"echo"}, Max: 2, Wait: task.Duration(5 * time.Second)})
	if err != nil || len(lr.Tasks) != 1 || lr.Tasks[0].TaskID != "t1" || !lr.Tasks[0].LeaseDeadline.Equal(deadline) || lr.LeaseTTL.D() != 10*time.Second {
		t.Fatalf("Lease = %+v, %v", lr, err)
	}
	hr, err := coord.Heartbeat(ctx, &worker.HeartbeatRequest{WorkerID: "w1", Leases: []worker.LeaseRef{{TaskID: "t1", Attempt: 1}}})
	if err != nil || len(hr.Lost) != 1 || hr.Lost[0].Reason != "cancelled" || hr.Lost[0].TaskID != "t1" {
		t.Fatalf("Heartbeat = %+v, %v", hr, err)
	}
	cr, err := coord.Complete(ctx, &worker.CompleteRequest{WorkerID: "w1", Reports: []worker.Report{
		{TaskID: "t1", Attempt: 1, Status: task.Completed, At: deadline},
		{TaskID: "t2", Attempt: 2, Status: task.Failed, At: deadline},
	}})
	if err != nil || len(cr.Results) != 2 || !cr.Results[0].Accepted || cr.Results[1].Accepted {
		t.Fatalf("Complete = %+v, %v", cr, err)
	}
	if p := c.NewWorker(worker.Options{WorkerID: "w1"}); p == nil || p.WorkerID() != "w1" {
		t.Fatalf("NewWorker = %v", p)
	}
}

func TestClusterAndHealth(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/cluster":
			io.WriteString(w, `{"node_id":"n1","state":"leader","leader_id":"n1","leader_addr":"10.0.0.1:8080",
				"term":4,"commit_index":100,"applied_index":99,"last_snapshot_index":50,"quorum_size":2,
				"members":[{"id":"n1","raft_addr":"10.0.0.1:7000","api_addr":"10.0.0.1:8080","role":"server","suffrage":"voter","state":"leader","last_contact":null,"labels":{}}],
				"tasks":{"pending":3,"running":1}}`)
		case "/api/v1/cluster/nodes":
			io.WriteString(w, `{"nodes":[{"id":"n1","role":"server","state":"leader","last_contact":null},
				{"id":"w1","role":"worker","state":"unknown","last_contact":"2026-01-02T03:04:05Z","labels":{"gpu":"true"}}]}`)
		case "/healthz":
			io.WriteString(w, `{"status":"ok"}`)
		case "/readyz":
			io.WriteString(w, `{"status":"ready"}`)
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	ctx := t.Context()
	ci, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.State != StateLeader || ci.Term != 4 || ci.CommitIndex != 100 || ci.QuorumSize != 2 || len(ci.Members) != 1 ||
		ci.Members[0].Suffrage != SuffrageVoter || ci.Tasks[task.Pending] != 3 || ci.Members[0].LastContact != nil {
		t.Errorf("Cluster = %+v", ci)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[1].Role != RoleWorker || nodes[1].LastContact == nil || nodes[1].Labels["gpu"] != "true" {
		t.Errorf("Nodes = %+v", nodes)
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestWatchErrorEvent(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": watching\n\n")
		switch conns.Add(1) {
		case 1:
			fmt.Fprint(w, "event: error\ndata: {\"code\":\"resource_exhausted\",\"message\":\"watcher fell behind; reconnect\"}\n\n")
		case 2:
			fmt.Fprint(w, "event: task\ndata: {\"id\":\"a\",\"status\":\"completed\"}\n\n")
			fmt.Fprint(w, "event: error\ndata: {\"code\":\"permission_denied\",\"message\":\"revoked\"}\n\n")
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	var disconnects []error
	var events int
	err := c.Watch(t.Context(), WatchOptions{
		OnDisconnect: func(err error) { disconnects = append(disconnects, err) },
	}, func(*task.Task) error { events++; return nil })
	if !greyerr.Is(err, greyerr.PermissionDenied) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("Watch = %v, want the permission_denied error event", err)
	}
	if events != 1 || len(disconnects) != 1 || !greyerr.Is(disconnects[0], greyerr.ResourceExhausted) {
		t.Fatalf("events %d, disconnects %v", events, disconnects)
	}
}
