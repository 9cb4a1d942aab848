package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// fakeServer emulates the HTTP contract of api/openapi.yaml in memory, enough
// to exercise the client: tasks are created pending and changed only by the
// test (finish) or by cancel.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	tasks    map[string]*task.Task
	order    []string // creation order
	watchers map[chan *task.Task]watchFilter
	seq      int
	headers  []http.Header // request headers, in arrival order
}

type watchFilter struct {
	tenant string
	status map[task.Status]bool
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, tasks: map[string]*task.Task{}, watchers: map[chan *task.Task]watchFilter{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/tasks", f.submit)
	mux.HandleFunc("POST /api/v1/tasks/batch", f.batch)
	mux.HandleFunc("GET /api/v1/tasks", f.list)
	mux.HandleFunc("GET /api/v1/tasks/watch", f.watch)
	mux.HandleFunc("GET /api/v1/tasks/{id}", f.get)
	mux.HandleFunc("DELETE /api/v1/tasks/{id}", f.cancel)
	mux.HandleFunc("GET /api/v1/tasks/{id}/wait", f.wait)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) URL() string { return f.srv.URL }

func tenantOf(r *http.Request) string {
	if t := r.Header.Get(TenantHeader); t != "" {
		return t
	}
	return "default"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, e *greyerr.Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter/time.Second)))
	}
	writeJSON(w, greyerr.HTTPStatus(e.Code), e)
}

// create adds a task; f.mu is held.
func (f *fakeServer) create(tenant string, s task.Spec, prefix string) (*task.Task, *greyerr.Error) {
	if err := s.Validate(prefix, task.Limits{}); err != nil {
		return nil, err.(*greyerr.Error)
	}
	f.seq++
	now := time.Now().UTC()
	t := &task.Task{
		ID:        fmt.Sprintf("00000000-0000-7000-8000-%012d", f.seq),
		TenantID:  tenant,
		Spec:      s,
		Status:    task.Pending,
		CreatedAt: now,
		UpdatedAt: now,
		Index:     uint64(f.seq),
	}
	f.tasks[t.ID] = t
	f.order = append(f.order, t.ID)
	return t, nil
}

func (f *fakeServer) submit(w http.ResponseWriter, r *http.Request) {
	var s task.Spec
	if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
		writeErr(w, greyerr.Invalid("", "bad JSON: %v", err))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.IdempotencyKey != "" {
		for _, t := range f.tasks {
			if t.TenantID == tenantOf(r) && t.IdempotencyKey == s.IdempotencyKey {
				writeJSON(w, http.StatusOK, t)
				return
			}
		}
	}
	t, err := f.create(tenantOf(r), s, "")
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (f *fakeServer) batch(w http.ResponseWriter, r *http.Request) {
	var req apitypes.BatchRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, greyerr.Invalid("", "bad JSON: %v", err))
		return
	}
	if len(req.Tasks) == 0 || len(req.Tasks) > 1000 {
		writeErr(w, greyerr.Invalid("tasks", "1 to 1000 tasks"))
		return
	}
	for i := range req.Tasks {
		if err := req.Tasks[i].Validate(fmt.Sprintf("tasks[%d].", i), task.Limits{}); err != nil {
			writeErr(w, err.(*greyerr.Error))
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := apitypes.BatchResponse{}
	for _, s := range req.Tasks {
		t, _ := f.create(tenantOf(r), s, "")
		out.Tasks = append(out.Tasks, t)
	}
	writeJSON(w, http.StatusCreated, out)
}

func (f *fakeServer) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeErr(w, greyerr.Invalid("limit", "must be 1..1000"))
			return
		}
		limit = n
	}
	status := map[task.Status]bool{}
	if s := q.Get("status"); s != "" {
		for _, v := range strings.Split(s, ",") {
			status[task.Status(v)] = true
		}
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		start, _ = strconv.Atoi(c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []*task.Task
	for i := len(f.order) - 1; i >= 0; i-- { // newest first
		t := f.tasks[f.order[i]]
		if t.TenantID != tenantOf(r) || (len(status) > 0 && !status[t.Status]) || (q.Get("kind") != "" && t.Kind != q.Get("kind")) {
			continue
		}
		match = append(match, t)
	}
	page := TaskPage{Tasks: []*task.Task{}}
	end := min(start+limit, len(match))
	if start < end {
		page.Tasks = match[start:end]
	}
	if end < len(match) {
		page.NextCursor = strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, page)
}

// lookup returns the tenant's task or writes 404; f.mu is held.
func (f *fakeServer) lookup(w http.ResponseWriter, r *http.Request) *task.Task {
	t := f.tasks[r.PathValue("id")]
	if t == nil || t.TenantID != tenantOf(r) {
		writeErr(w, greyerr.New(greyerr.NotFound, "task %s not found", r.PathValue("id")))
		return nil
	}
	return t
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.lookup(w, r); t != nil {
		writeJSON(w, http.StatusOK, t)
	}
}

func (f *fakeServer) cancel(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	t := f.lookup(w, r)
	if t == nil {
		f.mu.Unlock()
		return
	}
	if t.Status.Terminal() {
		f.mu.Unlock()
		writeErr(w, greyerr.New(greyerr.FailedPrecondition, "task is %s", t.Status))
		return
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.finish(t.ID, task.Cancelled))
}

func (f *fakeServer) wait(w http.ResponseWriter, r *http.Request) {
	timeout := 30 * time.Second
	if s := r.URL.Query().Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d > 5*time.Minute {
			writeErr(w, greyerr.Invalid("timeout", "bad timeout %q", s))
			return
		}
		timeout = d
	}
	deadline := time.Now().Add(timeout)
	for {
		f.mu.Lock()
		t := f.lookup(w, r)
		if t == nil {
			f.mu.Unlock()
			return
		}
		c := t.Clone()
		f.mu.Unlock()
		if c.Status.Terminal() || time.Now().After(deadline) {
			writeJSON(w, http.StatusOK, c)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeServer) watch(w http.ResponseWriter, r *http.Request) {
	flt := watchFilter{tenant: tenantOf(r), status: map[task.Status]bool{}}
	if s := r.URL.Query().Get("status"); s != "" {
		for _, v := range strings.Split(s, ",") {
			if !task.Status(v).Valid() {
				writeErr(w, greyerr.Invalid("status", "unknown status %q", v))
				return
			}
			flt.status[task.Status(v)] = true
		}
	}
	ch := make(chan *task.Task, 1024)
	f.mu.Lock()
	f.watchers[ch] = flt
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case t := <-ch:
			t.Payload, t.Result = nil, nil
			b, _ := json.Marshal(t)
			fmt.Fprintf(w, "event: task\ndata: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
	}
}

// finish moves a task to a terminal status and notifies watchers.
func (f *fakeServer) finish(id string, st task.Status) *task.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[id]
	if t == nil {
		f.t.Fatalf("finish: no task %s", id)
	}
	now := time.Now().UTC()
	t.Status, t.UpdatedAt, t.FinishedAt = st, now, &now
	if st == task.Completed {
		t.Result = json.RawMessage(`{"ok":true}`)
	}
	for ch, flt := range f.watchers {
		if flt.tenant == t.TenantID && (len(flt.status) == 0 || flt.status[st]) {
			ch <- t.Clone()
		}
	}
	return t.Clone()
}

// watcherCount returns the number of open watch streams.
func (f *fakeServer) watcherCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

// lastHeader returns the headers of the latest request.
func (f *fakeServer) lastHeader() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) == 0 {
		return nil
	}
	return f.headers[len(f.headers)-1]
}
