package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// The tests below drive the REST API over real HTTP against a single-node
// engine and hold every exchange to openapi.yaml: each well-formed request
// must pass Validator.ValidateRequest before it is sent, and every response,
// errors included, must pass Validator.ValidateResponse.

// validator is shared: it is safe for concurrent use and costly to build.
var validator = sync.OnceValues(api.NewValidator)

// zeroID is a well-formed task id that no task has.
const zeroID = "00000000-0000-7000-8000-000000000000"

// env is one node with the API served over HTTP.
type env struct {
	node *greytest.Node
	url  string
	hc   *http.Client
	v    *api.Validator
}

func newEnv(t *testing.T, cfg engine.Config, opts api.Options) *env {
	t.Helper()
	v, err := validator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	n := greytest.NewNode(t, cfg)
	if opts.Logger == nil {
		opts.Logger = greytest.Logger(t)
	}
	srv := httptest.NewServer(api.New(n.Engine, opts))
	// Registered after the node's cleanup, so it runs first: the server
	// stops before the engine under it.
	t.Cleanup(srv.Close)
	return &env{node: n, url: srv.URL, hc: srv.Client(), v: v}
}

// call is one request.
type call struct {
	method, path string
	// tenant is sent as X-Grey-Tenant; "" sends no header.
	tenant string
	// body is nil (no body), []byte or string (sent as is), or any other
	// value (sent JSON-encoded).
	body any
	// contentType defaults to application/json when there is a body.
	contentType string
	header      map[string]string
	// bad marks a deliberately malformed request: it is sent without being
	// held to the spec.
	bad bool
}

// reply is one response, already checked against the spec.
type reply struct {
	status int
	header http.Header
	body   []byte
	// specErr is the validator's verdict on a bad request.
	specErr error
}

// errBody is the JSON error body.
type errBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
	Reason  string `json:"reason"`
}

type taskList struct {
	Tasks      []*task.Task `json:"tasks"`
	NextCursor string       `json:"next_cursor"`
}

type batchReply struct {
	Tasks []*task.Task `json:"tasks"`
}

func (c call) encode(t *testing.T) []byte {
	t.Helper()
	switch b := c.body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal request body: %v", err)
		}
		return j
	}
}

func (e *env) request(t *testing.T, ctx context.Context, c call) (*http.Request, []byte) {
	t.Helper()
	body := c.encode(t)
	var rd io.Reader = http.NoBody
	if c.body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, e.url+c.path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if c.body != nil {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.tenant != "" {
		req.Header.Set(api.TenantHeader, c.tenant)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	return req, body
}

// do sends c, checks the request (unless c.bad) and the response against
// the spec, and returns the response.
func (e *env) do(t *testing.T, c call) reply {
	t.Helper()
	req, body := e.request(t, t.Context(), c)
	var specErr error
	if c.bad {
		specErr = e.v.ValidateRequest(req, body)
	} else if err := e.v.ValidateRequest(req, body); err != nil {
		t.Fatalf("%s %s: request does not match the API spec: %v", c.method, c.path, err)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	rb, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", c.method, c.path, err)
	}
	e.checkResponse(t, req, resp.StatusCode, resp.Header, rb)
	return reply{status: resp.StatusCode, header: resp.Header, body: rb, specErr: specErr}
}

// checkResponse validates a response against the spec. A response to a
// route the spec does not describe must be a 404 whose body is the spec's
// Error (checked as the 404 of a described route).
func (e *env) checkResponse(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	err := e.v.ValidateResponse(req, status, header, body)
	if c := greyerr.CodeOf(err); c == greyerr.NotFound || c == greyerr.Unimplemented {
		// An unknown path is 404; a known path's undeclared method 405
		// with Allow.
		want := http.StatusNotFound
		if c == greyerr.Unimplemented {
			want = http.StatusMethodNotAllowed
			if header.Get("Allow") == "" {
				t.Fatalf("%s %s: 405 without Allow", req.Method, req.URL.Path)
			}
		}
		if status != want {
			t.Fatalf("%s %s is not in the spec but answered %d, want %d", req.Method, req.URL.Path, status, want)
		}
		probe := httptest.NewRequest(http.MethodGet, "/api/v1/tasks/"+zeroID, nil)
		err = e.v.ValidateResponse(probe, status, header, body)
	}
	if err != nil {
		t.Fatalf("%s %s: response %d does not match the API spec: %v\nbody: %s", req.Method, req.URL.Path, status, err, body)
	}
}

// ok sends c, requires status want and a JSON body, and decodes it into out
// (when not nil).
func (e *env) ok(t *testing.T, c call, want int, out any) reply {
	t.Helper()
	r := e.do(t, c)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", c.method, c.path, r.status, want, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want application/json", c.method, c.path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", c.method, c.path, r.body, err)
		}
	}
	return r
}

// fail sends c and requires an error response with the status, code and
// field ("" = no field). 429 and 503 must carry Retry-After; others must not.
// Where the validator also rejects a bad request and names a field, the
// server's field must name the same one (or the validator's more precise one).
func (e *env) fail(t *testing.T, c call, status int, code greyerr.Code, field string) errBody {
	t.Helper()
	r := e.do(t, c)
	if r.status != status {
		t.Fatalf("%s %s: status %d, want %d; body: %s", c.method, c.path, r.status, status, r.body)
	}
	var eb errBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("%s %s: decode error body %s: %v", c.method, c.path, r.body, err)
	}
	if eb.Code != string(code) || eb.Field != field {
		t.Fatalf("%s %s: error {code %q, field %q}, want {code %q, field %q}; message: %s",
			c.method, c.path, eb.Code, eb.Field, code, field, eb.Message)
	}
	if eb.Message == "" {
		t.Errorf("%s %s: error without a message", c.method, c.path)
	}
	ra := r.header.Get("Retry-After")
	if wantRA := status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable; wantRA != (ra != "") {
		t.Errorf("%s %s: status %d with Retry-After %q", c.method, c.path, status, ra)
	}
	var ge *greyerr.Error
	if c.bad && r.specErr != nil && asGrey(r.specErr, &ge) && ge.Code == greyerr.InvalidArgument && ge.Field != "" && field != "" {
		// Either may be the more precise (the validator sees a schema
		// rule on an object, the server the field that breaks it).
		within := func(a, b string) bool {
			return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
		}
		if !within(ge.Field, field) && !within(field, ge.Field) {
			t.Errorf("%s %s: server names field %q, the spec validator %q (%v)", c.method, c.path, field, ge.Field, r.specErr)
		}
	}
	return eb
}

func asGrey(err error, ge **greyerr.Error) bool {
	g, ok := err.(*greyerr.Error)
	*ge = g
	return ok
}

// submit posts one spec for tenant and requires 201.
func (e *env) submit(t *testing.T, tenant string, spec any) *task.Task {
	t.Helper()
	var tk task.Task
	e.ok(t, call{method: "POST", path: "/api/v1/tasks", tenant: tenant, body: spec}, http.StatusCreated, &tk)
	if tk.ID == "" || tk.Status != task.Pending {
		t.Fatalf("submitted task %+v, want a pending task with an id", tk)
	}
	return &tk
}

func (e *env) get(t *testing.T, tenant, id string) *task.Task {
	t.Helper()
	var tk task.Task
	e.ok(t, call{method: "GET", path: "/api/v1/tasks/" + id, tenant: tenant}, http.StatusOK, &tk)
	return &tk
}

func (e *env) list(t *testing.T, tenant, query string) taskList {
	t.Helper()
	var l taskList
	e.ok(t, call{method: "GET", path: "/api/v1/tasks" + query, tenant: tenant}, http.StatusOK, &l)
	return l
}

func ids(ts []*task.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func (e *env) storeLen(t *testing.T, want int) {
	t.Helper()
	if got := e.node.Store.Len(); got != want {
		t.Fatalf("store holds %d tasks, want %d", got, want)
	}
}

func intp(n int) *int { return &n }

// ---------------------------------------------------------------------------

func TestHealthReadyAndSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})

	var h map[string]string
	e.ok(t, call{method: "GET", path: "/healthz"}, http.StatusOK, &h)
	if h["status"] != "ok" {
		t.Errorf("healthz = %v", h)
	}
	e.ok(t, call{method: "GET", path: "/readyz"}, http.StatusOK, &h)
	if h["status"] != "ready" {
		t.Errorf("readyz = %v", h)
	}

	r := e.do(t, call{method: "GET", path: "/api/v1/openapi.yaml"})
	if r.status != http.StatusOK {
		t.Fatalf("openapi.yaml: status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("openapi.yaml: Content-Type %q", ct)
	}
	if !bytes.Equal(r.body, api.Spec()) {
		t.Errorf("openapi.yaml: served %d bytes that differ from api.Spec()", len(r.body))
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{APIAddr: "127.0.0.1:8080"})
	e.submit(t, "acme", map[string]any{"kind": "noop"})

	var ci engine.ClusterInfo
	e.ok(t, call{method: "GET", path: "/api/v1/cluster"}, http.StatusOK, &ci)
	if ci.NodeID != "test-1" || ci.State != "leader" || ci.LeaderID != "test-1" || ci.QuorumSize != 1 {
		t.Errorf("cluster = %+v, want test-1 leading a quorum of 1", ci)
	}
	if ci.Term == 0 || ci.CommitIndex == 0 || ci.AppliedIndex == 0 {
		t.Errorf("cluster indexes = term %d commit %d applied %d, want > 0", ci.Term, ci.CommitIndex, ci.AppliedIndex)
	}
	if ci.Tasks[task.Pending] != 1 {
		t.Errorf("cluster tasks = %v, want 1 pending", ci.Tasks)
	}
	if len(ci.Members) != 1 || ci.Members[0].APIAddr != "127.0.0.1:8080" || ci.Members[0].State != "leader" {
		t.Errorf("members = %+v", ci.Members)
	}

	var nl struct {
		Nodes []engine.NodeInfo `json:"nodes"`
	}
	e.ok(t, call{method: "GET", path: "/api/v1/cluster/nodes"}, http.StatusOK, &nl)
	if len(nl.Nodes) != 1 || nl.Nodes[0].ID != "test-1" || nl.Nodes[0].Role != "server" ||
		nl.Nodes[0].Suffrage != "voter" || nl.Nodes[0].RaftAddr == "" {
		t.Errorf("nodes = %+v", nl.Nodes)
	}
}

func TestSubmitAndIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	runAt := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	spec := map[string]any{
		"kind":            "echo",
		"payload":         map[string]any{"msg": "hi"},
		"priority":        7,
		"idempotency_key": "order-42",
		"constraints":     map[string]any{"labels": map[string]string{"gpu": "true"}, "cpu": 0.5, "memory_mb": 256},
		"timeout":         "1.5s",
		"retry":           map[string]any{"max_retries": 2, "base_delay": "100ms"},
		"run_at":          runAt,
		"headers":         map[string]string{"traceparent": "00-abc-def-01"},
	}
	first := e.submit(t, "acme", spec)
	if first.TenantID != "acme" || first.Kind != "echo" || first.Type != task.Stateless || first.Prio() != 7 ||
		first.Timeout.D() != 1500*time.Millisecond || first.RunAt == nil || !first.RunAt.Equal(runAt) ||
		string(first.Payload) != `{"msg":"hi"}` || first.Headers["traceparent"] != "00-abc-def-01" {
		t.Errorf("submitted task = %+v", first)
	}

	// The same request again answers 200 with the existing task, unchanged.
	var again task.Task
	e.ok(t, call{method: "POST", path: "/api/v1/tasks", tenant: "acme", body: spec}, http.StatusOK, &again)
	if again.ID != first.ID || string(again.Payload) != `{"msg":"hi"}` {
		t.Errorf("replay = %s %s, want %s with the first payload", again.ID, again.Payload, first.ID)
	}
	// The same key with another payload or kind is 409 naming what differs.
	spec["payload"] = "other"
	spec["kind"] = "noop"
	eb := e.fail(t, call{method: "POST", path: "/api/v1/tasks", tenant: "acme", body: spec}, http.StatusConflict, greyerr.AlreadyExists, "idempotency_key")
	if eb.Reason != "idempotency_key_reused" || !strings.Contains(eb.Message, "different kind, payload;") || !strings.Contains(eb.Message, first.ID) {
		t.Errorf("reused key = %+v, want reason idempotency_key_reused naming kind, payload and task %s", eb, first.ID)
	}
	e.storeLen(t, 1)

	// Defaults: type stateless, priority 5 (filled in), default tenant.
	d := e.submit(t, "", map[string]any{"kind": "noop"})
	if d.TenantID != api.DefaultTenant || d.Type != task.Stateless || d.Prio() != task.DefaultPriority {
		t.Errorf("defaults = tenant %q type %q priority %d", d.TenantID, d.Type, d.Prio())
	}
	// A state key implies stateful; depends_on implies pipeline.
	if s := e.submit(t, "acme", map[string]any{"kind": "noop", "state_key": "acct-1"}); s.Type != task.Stateful {
		t.Errorf("type with state_key = %q", s.Type)
	}
	if p := e.submit(t, "acme", map[string]any{"kind": "noop", "depends_on": []string{first.ID}}); p.Type != task.Pipeline {
		t.Errorf("type with depends_on = %q", p.Type)
	}
	e.storeLen(t, 4)
}

// TestCurlFormContentType: the README's curl -d (which sends the form
// content type) creates the task; JSON is read whatever the form type says.
func TestCurlFormContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	r := e.do(t, call{method: "POST", path: "/api/v1/tasks", tenant: "acme", bad: true,
		contentType: "application/x-www-form-urlencoded", body: `{"kind":"echo","payload":{"hello":"world"},"priority":7}`})
	var tk task.Task
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &tk) != nil || tk.Kind != "echo" || string(tk.Payload) != `{"hello":"world"}` || tk.Prio() != 7 {
		t.Fatalf("curl -d submit = %d %s, want 201 with the echo task", r.status, r.body)
	}
	// No Content-Type at all is JSON too.
	r = e.do(t, call{method: "POST", path: "/api/v1/tasks", tenant: "acme", bad: true, contentType: " ", body: `{"kind":"noop"}`})
	if r.status != http.StatusCreated {
		t.Fatalf("submit without Content-Type = %d %s, want 201", r.status, r.body)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	var br batchReply
	e.ok(t, call{method: "POST", path: "/api/v1/tasks/batch", tenant: "acme", body: map[string]any{"tasks": []map[string]any{
		{"kind": "noop"},
		{"kind": "echo", "payload": 1, "idempotency_key": "k"},
		{"kind": "sleep", "payload": map[string]int{"ms": 1}},
		{"kind": "echo", "payload": 1, "idempotency_key": "k"},
	}}}, http.StatusCreated, &br)
	if len(br.Tasks) != 4 {
		t.Fatalf("batch returned %d tasks, want 4", len(br.Tasks))
	}
	for i, kind := range []string{"noop", "echo", "sleep", "echo"} {
		if br.Tasks[i].Kind != kind || br.Tasks[i].TenantID != "acme" {
			t.Errorf("tasks[%d] = %s of %s, want %s of acme (request order)", i, br.Tasks[i].Kind, br.Tasks[i].TenantID, kind)
		}
	}
	// The repeated key in one batch names the first item's task.
	if br.Tasks[3].ID != br.Tasks[1].ID || string(br.Tasks[3].Payload) != "1" {
		t.Errorf("tasks[3] = %s %s, want tasks[1] (%s)", br.Tasks[3].ID, br.Tasks[3].Payload, br.Tasks[1].ID)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids(br.Tasks[:3]))))) != 3 {
		t.Errorf("ids not distinct: %v", ids(br.Tasks))
	}
	e.storeLen(t, 3)

	// A pipeline over an existing parent.
	parent := br.Tasks[0].ID
	e.ok(t, call{method: "POST", path: "/api/v1/tasks/batch", tenant: "acme", body: map[string]any{"tasks": []map[string]any{
		{"kind": "noop", "depends_on": []string{parent}},
	}}}, http.StatusCreated, &br)
	if len(br.Tasks) != 1 || br.Tasks[0].Type != task.Pipeline || !slices.Equal(br.Tasks[0].DependsOn, []string{parent}) {
		t.Fatalf("pipeline batch = %+v", br.Tasks)
	}
	if g := e.get(t, "acme", br.Tasks[0].ID); !strings.Contains(g.WaitingReason, "dependencies") {
		t.Errorf("pipeline waiting reason = %q", g.WaitingReason)
	}
	e.storeLen(t, 4)
}

func TestListFiltersAndPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	// No workers: everything stays pending except what is cancelled.
	kinds := []string{"noop", "echo", "noop", "noop", "echo", "noop", "noop"}
	items := make([]map[string]any, len(kinds))
	for i, k := range kinds {
		items[i] = map[string]any{"kind": k, "payload": i}
	}
	var br batchReply
	e.ok(t, call{method: "POST", path: "/api/v1/tasks/batch", tenant: "acme", body: map[string]any{"tasks": items}}, http.StatusCreated, &br)
	sub := ids(br.Tasks) // submission order = id order (UUIDv7)
	var cancelled task.Task
	e.ok(t, call{method: "DELETE", path: "/api/v1/tasks/" + sub[2], tenant: "acme"}, http.StatusOK, &cancelled)

	// newest returns the submitted ids at the positions, newest first.
	newest := func(pos ...int) []string {
		out := []string{}
		for i := len(sub) - 1; i >= 0; i-- {
			if slices.Contains(pos, i) {
				out = append(out, sub[i])
			}
		}
		return out
	}
	all := []int{0, 1, 2, 3, 4, 5, 6}

	// Three pages of 3, 3 and 1, newest first, no duplicates.
	var got []string
	seen := map[string]bool{}
	cursor := ""
	for page := 1; ; page++ {
		q := "?limit=3"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		l := e.list(t, "acme", q)
		want := []int{3, 3, 1}[page-1]
		if len(l.Tasks) != want {
			t.Fatalf("page %d has %d tasks, want %d", page, len(l.Tasks), want)
		}
		for i, tk := range l.Tasks {
			if seen[tk.ID] {
				t.Fatalf("page %d repeats %s", page, tk.ID)
			}
			seen[tk.ID] = true
			got = append(got, tk.ID)
			if i > 0 && tk.CreatedAt.After(l.Tasks[i-1].CreatedAt) {
				t.Errorf("page %d: %s created after its predecessor", page, tk.ID)
			}
		}
		if page == 3 {
			if l.NextCursor != "" {
				t.Fatalf("last page next_cursor = %q, want empty", l.NextCursor)
			}
			break
		}
		if l.NextCursor == "" {
			t.Fatalf("page %d: empty next_cursor before the end", page)
		}
		cursor = l.NextCursor
	}
	if !slices.Equal(got, newest(all...)) {
		t.Errorf("pages = %v, want newest first %v", got, newest(all...))
	}

	// One page holds everything without a limit.
	if l := e.list(t, "acme", ""); !slices.Equal(ids(l.Tasks), newest(all...)) || l.NextCursor != "" {
		t.Errorf("list = %v next %q, want all", ids(l.Tasks), l.NextCursor)
	}

	filters := []struct {
		query string
		want  []string
	}{
		{"?kind=echo", newest(1, 4)},
		{"?status=cancelled", newest(2)},
		{"?status=pending&kind=noop", newest(0, 3, 5, 6)},
		{"?status=pending,cancelled", newest(all...)},
		{"?status=completed", []string{}},
		{"?status=running,failed&kind=noop", []string{}},
		{"?kind=sleep", []string{}},
	}
	for _, f := range filters {
		l := e.list(t, "acme", f.query)
		if !slices.Equal(ids(l.Tasks), f.want) || l.NextCursor != "" {
			t.Errorf("list%s = %v next %q, want %v", f.query, ids(l.Tasks), l.NextCursor, f.want)
		}
		for _, tk := range l.Tasks {
			if tk.TenantID != "acme" {
				t.Errorf("list%s returned a task of %s", f.query, tk.TenantID)
			}
		}
	}

	// Pagination honours the filter: noop tasks two at a time.
	var pages [][]string
	cursor = ""
	for {
		q := "?kind=noop&limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		l := e.list(t, "acme", q)
		pages = append(pages, ids(l.Tasks))
		if cursor = l.NextCursor; cursor == "" || len(pages) > 5 {
			break
		}
	}
	wantPages := [][]string{newest(5, 6), newest(2, 3), newest(0)}
	if !slices.EqualFunc(pages, wantPages, slices.Equal) {
		t.Errorf("filtered pages = %v, want %v", pages, wantPages)
	}

	// Another tenant lists nothing (an empty array, not null).
	if l := e.list(t, "globex", ""); len(l.Tasks) != 0 || l.NextCursor != "" {
		t.Errorf("globex list = %v", ids(l.Tasks))
	}
}

func TestGetAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	tk := e.submit(t, "acme", map[string]any{"kind": "noop", "payload": "x"})

	got := e.get(t, "acme", tk.ID)
	if got.ID != tk.ID || got.Status != task.Pending || got.WaitingReason == "" || string(got.Payload) != `"x"` {
		t.Errorf("get = %+v, want the pending task with a waiting reason", got)
	}

	var c task.Task
	e.ok(t, call{method: "DELETE", path: "/api/v1/tasks/" + tk.ID, tenant: "acme"}, http.StatusOK, &c)
	if c.Status != task.Cancelled || c.FinishedAt == nil || c.Error == nil || c.Error.Code != "cancelled" {
		t.Errorf("cancel = %+v", c)
	}
	if g := e.get(t, "acme", tk.ID); g.Status != task.Cancelled {
		t.Errorf("after cancel status = %s", g.Status)
	}
	e.fail(t, call{method: "DELETE", path: "/api/v1/tasks/" + tk.ID, tenant: "acme"}, http.StatusConflict, greyerr.FailedPrecondition, "")
	if g := e.get(t, "acme", tk.ID); g.Status != task.Cancelled || g.Index != c.Index {
		t.Errorf("second cancel changed the task: %+v", g)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{Kinds: []string{"manual"}}, api.Options{})
	e.node.StartWorkers(t, worker.Options{LeaseWait: time.Second}, nil)

	// A task the workers run: wait answers once it completed.
	tk := e.submit(t, "acme", map[string]any{"kind": "echo", "payload": map[string]string{"msg": "hi"}})
	var done task.Task
	e.ok(t, call{method: "GET", path: "/api/v1/tasks/" + tk.ID + "/wait?timeout=20s", tenant: "acme"}, http.StatusOK, &done)
	if done.Status != task.Completed || string(done.Result) != `{"msg":"hi"}` || done.Attempt != 1 || len(done.Attempts) != 1 {
		t.Errorf("wait = %+v, want completed with the echoed result", done)
	}
	// An already terminal task answers at once.
	start := time.Now()
	e.ok(t, call{method: "GET", path: "/api/v1/tasks/" + tk.ID + "/wait?timeout=5m", tenant: "acme"}, http.StatusOK, &done)
	if done.Status != task.Completed || time.Since(start) > 3*time.Second {
		t.Errorf("wait on a completed task: %s after %s", done.Status, time.Since(start))
	}

	// No worker runs "manual": the timeout passes and the task comes back
	// as it is.
	m := e.submit(t, "acme", map[string]any{"kind": "manual"})
	var p task.Task
	start = time.Now()
	e.ok(t, call{method: "GET", path: "/api/v1/tasks/" + m.ID + "/wait?timeout=50ms", tenant: "acme"}, http.StatusOK, &p)
	if el := time.Since(start); p.Status != task.Pending || el > 3*time.Second || el < 40*time.Millisecond {
		t.Errorf("wait timeout=50ms: %s after %s, want pending after ~50ms", p.Status, el)
	}
	// timeout=0 does not wait.
	e.ok(t, call{method: "GET", path: "/api/v1/tasks/" + m.ID + "/wait?timeout=0", tenant: "acme"}, http.StatusOK, &p)
	if p.Status != task.Pending {
		t.Errorf("wait timeout=0: %s", p.Status)
	}

	// A cancel ends a wait in progress.
	result := make(chan task.Task, 1)
	go func() {
		// No t.Fatal off the test goroutine: the result is checked below.
		var w task.Task
		req, err := http.NewRequestWithContext(t.Context(), "GET", e.url+"/api/v1/tasks/"+m.ID+"/wait?timeout=30s", nil)
		if err == nil {
			req.Header.Set(api.TenantHeader, "acme")
		}
		var resp *http.Response
		if err == nil && e.v.ValidateRequest(req, nil) == nil {
			resp, err = e.hc.Do(req)
		}
		if err == nil && resp != nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if e.v.ValidateResponse(req, resp.StatusCode, resp.Header, b) == nil && resp.StatusCode == 200 {
				_ = json.Unmarshal(b, &w)
			}
		}
		result <- w
	}()
	time.Sleep(100 * time.Millisecond)
	e.ok(t, call{method: "DELETE", path: "/api/v1/tasks/" + m.ID, tenant: "acme"}, http.StatusOK, nil)
	select {
	case w := <-result:
		if w.Status != task.Cancelled {
			t.Errorf("wait ended by cancel: %+v", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not end when the task was cancelled")
	}
}

// stream reads a watch response's server-sent events.
type stream struct {
	t   *testing.T
	e   *env
	sc  *bufio.Scanner
	raw []string
}

// watch opens GET /api/v1/tasks/watch; when it returns, the subscription is
// registered.
func (e *env) watch(t *testing.T, tenant, query string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	req, _ := e.request(t, ctx, call{method: "GET", path: "/api/v1/tasks/watch" + query, tenant: tenant})
	if err := e.v.ValidateRequest(req, nil); err != nil {
		cancel()
		t.Fatalf("watch request does not match the spec: %v", err)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("watch: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
	})
	e.checkResponse(t, req, resp.StatusCode, resp.Header, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &stream{t: t, e: e, sc: sc}
}

// next returns the next task event, checking its data against the spec's
// Task schema; it fails the test on an error event or the end of the stream.
func (s *stream) next() *task.Task {
	s.t.Helper()
	event, data := "", ""
	for s.sc.Scan() {
		line := s.sc.Text()
		s.raw = append(s.raw, line)
		switch {
		case line == "":
			if event == "" && data == "" {
				continue
			}
			if event != "task" {
				s.t.Fatalf("watch: event %q: %s", event, data)
			}
			probe := httptest.NewRequest(http.MethodGet, "/api/v1/tasks/"+zeroID, nil)
			if err := s.e.v.ValidateResponse(probe, 200, http.Header{"Content-Type": {"application/json"}}, []byte(data)); err != nil {
				s.t.Fatalf("watch: event data is not a Task: %v\n%s", err, data)
			}
			var tk task.Task
			if err := json.Unmarshal([]byte(data), &tk); err != nil {
				s.t.Fatalf("watch: decode %s: %v", data, err)
			}
			if tk.Payload != nil || tk.Result != nil {
				s.t.Errorf("watch: event carries payload or result: %s", data)
			}
			return &tk
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		default:
			s.t.Fatalf("watch: unexpected line %q", line)
		}
	}
	s.t.Fatalf("watch: stream ended (%v) after %q", s.sc.Err(), s.raw)
	return nil
}

// until reads events until id reaches status, and returns all events read.
func (s *stream) until(id string, status task.Status) []*task.Task {
	s.t.Helper()
	var evs []*task.Task
	for {
		tk := s.next()
		evs = append(evs, tk)
		if tk.ID == id && tk.Status == status {
			return evs
		}
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	e.node.StartWorkers(t, worker.Options{LeaseWait: time.Second}, nil)

	all := e.watch(t, "acme", "")
	completed := e.watch(t, "acme", "?status=completed&kind=echo")

	tk := e.submit(t, "acme", map[string]any{"kind": "echo", "payload": "hi"})
	evs := all.until(tk.ID, task.Completed)
	if evs[0].ID != tk.ID || evs[0].Status != task.Pending {
		t.Errorf("first event = %s %s, want %s pending", evs[0].ID, evs[0].Status, tk.ID)
	}
	order := map[task.Status]int{task.Pending: 0, task.Leased: 1, task.Running: 2, task.Completed: 3}
	for i, ev := range evs {
		if ev.ID != tk.ID || ev.TenantID != "acme" {
			t.Errorf("event %d is for %s of %s", i, ev.ID, ev.TenantID)
		}
		if i > 0 && order[ev.Status] < order[evs[i-1].Status] {
			t.Errorf("event %d goes back from %s to %s", i, evs[i-1].Status, ev.Status)
		}
	}

	// The filtered watch sees the completion only.
	if ev := completed.next(); ev.ID != tk.ID || ev.Status != task.Completed {
		t.Errorf("filtered watch event = %s %s", ev.ID, ev.Status)
	}
}

func TestWorkerProtocolByHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{Kinds: []string{"manual"}}, api.Options{})
	tk := e.submit(t, "acme", map[string]any{"kind": "manual", "payload": map[string]int{"n": 1}, "headers": map[string]string{"traceparent": "t-1"}})

	lease := func(workerID, wait string) worker.LeaseResponse {
		t.Helper()
		var lr worker.LeaseResponse
		e.ok(t, call{method: "POST", path: "/api/v1/workers/lease",
			body: map[string]any{"worker_id": workerID, "kinds": []string{"manual"}, "max": 5, "wait": wait, "labels": map[string]string{}, "platform": "software"}},
			http.StatusOK, &lr)
		return lr
	}
	report := func(workerID string, reps ...worker.Report) []worker.ReportResult {
		t.Helper()
		var cr worker.CompleteResponse
		e.ok(t, call{method: "POST", path: "/api/v1/workers/complete", body: worker.CompleteRequest{WorkerID: workerID, Reports: append([]worker.Report{}, reps...)}}, http.StatusOK, &cr)
		if len(cr.Results) != len(reps) {
			t.Fatalf("complete: %d results for %d reports", len(cr.Results), len(reps))
		}
		return cr.Results
	}
	heartbeat := func(workerID string, refs ...worker.LeaseRef) []worker.LostLease {
		t.Helper()
		var hr worker.HeartbeatResponse
		e.ok(t, call{method: "POST", path: "/api/v1/workers/heartbeat", body: worker.HeartbeatRequest{WorkerID: workerID, Leases: append([]worker.LeaseRef{}, refs...)}}, http.StatusOK, &hr)
		return hr.Lost
	}

	// Lease.
	lr := lease("w-1", "5s")
	if len(lr.Tasks) != 1 {
		t.Fatalf("lease granted %d tasks, want 1", len(lr.Tasks))
	}
	a := lr.Tasks[0]
	if a.TaskID != tk.ID || a.TenantID != "acme" || a.Kind != "manual" || a.Attempt != 1 ||
		string(a.Payload) != `{"n":1}` || a.Headers["traceparent"] != "t-1" || a.Timeout <= 0 || lr.LeaseTTL <= 0 {
		t.Errorf("assignment = %+v (ttl %s)", a, lr.LeaseTTL.D())
	}
	if g := e.get(t, "acme", tk.ID); g.Status != task.Leased || g.Lease == nil || g.Lease.WorkerID != "w-1" || g.Lease.Attempt != 1 {
		t.Errorf("after lease: %+v", g)
	}
	// Nothing else to lease: an empty list after the wait.
	if lr := lease("w-2", "50ms"); len(lr.Tasks) != 0 {
		t.Errorf("second lease granted %d tasks", len(lr.Tasks))
	}

	// Heartbeat: the lease is held; unknown tasks and other attempts are lost.
	lost := heartbeat("w-1", worker.LeaseRef{TaskID: tk.ID, Attempt: 1}, worker.LeaseRef{TaskID: zeroID, Attempt: 1}, worker.LeaseRef{TaskID: tk.ID, Attempt: 2})
	if len(lost) != 2 || lost[0].TaskID != zeroID || lost[0].Reason != "unknown" || lost[1].Attempt != 2 || lost[1].Reason != "expired" {
		t.Errorf("heartbeat lost = %+v", lost)
	}

	now := time.Now().UTC()
	// Start.
	if res := report("w-1", worker.Report{TaskID: tk.ID, Attempt: 1, Status: task.Running, At: now}); !res[0].Accepted {
		t.Fatalf("start refused: %+v", res[0])
	}
	if g := e.get(t, "acme", tk.ID); g.Status != task.Running || g.StartedAt == nil {
		t.Errorf("after start: %+v", g)
	}
	// Refused: another worker, a stale attempt.
	res := report("w-2", worker.Report{TaskID: tk.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`"forged"`), At: now})
	res = append(res, report("w-1", worker.Report{TaskID: tk.ID, Attempt: 2, Status: task.Completed, Result: json.RawMessage(`"stale"`), At: now})...)
	for i, r := range res {
		if r.Accepted || r.Reason == "" || r.TaskID != tk.ID {
			t.Errorf("refusal %d = %+v, want refused with a reason", i, r)
		}
	}
	if g := e.get(t, "acme", tk.ID); g.Status != task.Running || g.Result != nil {
		t.Errorf("a refused report changed the task: %+v", g)
	}
	// Complete.
	if res := report("w-1", worker.Report{TaskID: tk.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`{"ok":true}`), At: time.Now().UTC()}); !res[0].Accepted {
		t.Fatalf("completion refused: %+v", res[0])
	}
	g := e.get(t, "acme", tk.ID)
	if g.Status != task.Completed || string(g.Result) != `{"ok":true}` || g.Lease != nil || g.FinishedAt == nil ||
		len(g.Attempts) != 1 || g.Attempts[0].WorkerID != "w-1" || g.Attempts[0].FinishedAt == nil {
		t.Errorf("after completion: %+v", g)
	}
	// A second outcome for the same attempt is refused.
	if res := report("w-1", worker.Report{TaskID: tk.ID, Attempt: 1, Status: task.Failed, Error: &task.Error{Message: "late"}, At: time.Now().UTC()}); res[0].Accepted {
		t.Errorf("second outcome accepted: %+v", res[0])
	}
	if lost := heartbeat("w-1", worker.LeaseRef{TaskID: tk.ID, Attempt: 1}); len(lost) != 1 || lost[0].Reason != "expired" {
		t.Errorf("heartbeat after completion: %+v", lost)
	}

	// A cancelled lease is lost, and its outcome refused.
	c := e.submit(t, "acme", map[string]any{"kind": "manual"})
	if lr := lease("w-1", "5s"); len(lr.Tasks) != 1 || lr.Tasks[0].TaskID != c.ID {
		t.Fatalf("lease = %+v, want %s", lr.Tasks, c.ID)
	}
	e.ok(t, call{method: "DELETE", path: "/api/v1/tasks/" + c.ID, tenant: "acme"}, http.StatusOK, nil)
	if lost := heartbeat("w-1", worker.LeaseRef{TaskID: c.ID, Attempt: 1}); len(lost) != 1 || lost[0].Reason != "cancelled" {
		t.Errorf("heartbeat after cancel: %+v", lost)
	}
	if res := report("w-1", worker.Report{TaskID: c.ID, Attempt: 1, Status: task.Completed, At: time.Now().UTC()}); res[0].Accepted {
		t.Errorf("outcome of a cancelled task accepted: %+v", res[0])
	}
	// An empty report batch is fine.
	if res := report("w-1"); len(res) != 0 {
		t.Errorf("empty complete = %+v", res)
	}
}

// TestWorkerStaleAttemptAfterExpiry lets a lease lapse so the task is
// leased again, and checks that the first worker's late outcome is refused.
func TestWorkerStaleAttemptAfterExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{
		Kinds:    []string{"manual"},
		LeaseTTL: 300 * time.Millisecond,
		Retry:    task.RetryPolicy{MaxRetries: intp(3), BaseDelay: task.Duration(time.Millisecond), MaxDelay: task.Duration(5 * time.Millisecond)},
	}, api.Options{})
	tk := e.submit(t, "acme", map[string]any{"kind": "manual"})
	lease := func(workerID string) *worker.Assignment {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			var lr worker.LeaseResponse
			e.ok(t, call{method: "POST", path: "/api/v1/workers/lease", body: worker.LeaseRequest{WorkerID: workerID, Kinds: []string{"manual"}, Max: 1, Wait: task.Duration(time.Second)}}, http.StatusOK, &lr)
			if len(lr.Tasks) == 1 {
				return &lr.Tasks[0]
			}
		}
		t.Fatalf("%s leased nothing", workerID)
		return nil
	}
	if a := lease("w-1"); a.TaskID != tk.ID || a.Attempt != 1 {
		t.Fatalf("first lease = %+v", a)
	}
	// w-1 goes silent; the lease lapses and w-2 gets attempt 2.
	if a := lease("w-2"); a.TaskID != tk.ID || a.Attempt != 2 {
		t.Fatalf("second lease = %+v", a)
	}
	var hr worker.HeartbeatResponse
	e.ok(t, call{method: "POST", path: "/api/v1/workers/heartbeat", body: worker.HeartbeatRequest{WorkerID: "w-1", Leases: []worker.LeaseRef{{TaskID: tk.ID, Attempt: 1}}}}, http.StatusOK, &hr)
	if len(hr.Lost) != 1 || hr.Lost[0].Reason != "expired" {
		t.Errorf("w-1 heartbeat lost = %+v, want expired", hr.Lost)
	}
	var cr worker.CompleteResponse
	e.ok(t, call{method: "POST", path: "/api/v1/workers/complete", body: worker.CompleteRequest{WorkerID: "w-1", Reports: []worker.Report{
		{TaskID: tk.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`"late"`), At: time.Now().UTC()},
	}}}, http.StatusOK, &cr)
	if cr.Results[0].Accepted || cr.Results[0].Reason == "" {
		t.Errorf("stale outcome = %+v, want refused", cr.Results[0])
	}
	e.ok(t, call{method: "POST", path: "/api/v1/workers/complete", body: worker.CompleteRequest{WorkerID: "w-2", Reports: []worker.Report{
		{TaskID: tk.ID, Attempt: 2, Status: task.Completed, Result: json.RawMessage(`"on time"`), At: time.Now().UTC()},
	}}}, http.StatusOK, &cr)
	if !cr.Results[0].Accepted {
		t.Errorf("current outcome refused: %+v", cr.Results[0])
	}
	g := e.get(t, "acme", tk.ID)
	if g.Status != task.Completed || string(g.Result) != `"on time"` || g.Attempt != 2 || len(g.Attempts) != 2 || g.Attempts[0].Error == nil {
		t.Errorf("task = %+v", g)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{MaxPayloadBytes: 1024}, api.Options{MaxBodyBytes: 4096})
	big := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name   string
		c      call
		status int
		code   greyerr.Code
		field  string
		// msg must appear in the message.
		msg string
	}{
		// Bodies.
		{"truncated JSON", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":`}, 400, greyerr.InvalidArgument, "body", ""},
		{"syntax error", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop",}`}, 400, greyerr.InvalidArgument, "body", ""},
		{"two values", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop"} {}`}, 400, greyerr.InvalidArgument, "body", ""},
		{"empty body", call{method: "POST", path: "/api/v1/tasks", body: ``}, 400, greyerr.InvalidArgument, "body", ""},
		{"not an object", call{method: "POST", path: "/api/v1/tasks", body: `[1]`}, 400, greyerr.InvalidArgument, "body", ""},
		{"unknown field", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","bogus":1}`}, 400, greyerr.InvalidArgument, "bogus", "bogus"},
		{"priority wrong type", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","priority":"high"}`}, 400, greyerr.InvalidArgument, "priority", ""},
		{"nested wrong type", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","constraints":{"cpu":"lots"}}`}, 400, greyerr.InvalidArgument, "constraints.cpu", ""},
		{"priority 11", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","priority":11}`}, 400, greyerr.InvalidArgument, "priority", ""},
		{"priority -1", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","priority":-1}`}, 400, greyerr.InvalidArgument, "priority", ""},
		{"missing kind", call{method: "POST", path: "/api/v1/tasks", body: `{"payload":1}`}, 400, greyerr.InvalidArgument, "kind", ""},
		{"malformed kind", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"No!"}`}, 400, greyerr.InvalidArgument, "kind", ""},
		{"unknown kind", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"nope"}`}, 400, greyerr.InvalidArgument, "kind", "nope"},
		{"bad type", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","type":"batch"}`}, 400, greyerr.InvalidArgument, "type", ""},
		{"stateful without key", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","type":"stateful"}`}, 400, greyerr.InvalidArgument, "state_key", ""},
		{"bad idempotency key", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","idempotency_key":"has space"}`}, 400, greyerr.InvalidArgument, "idempotency_key", ""},
		{"unknown parent", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","depends_on":["` + zeroID + `"]}`}, 400, greyerr.InvalidArgument, "depends_on", zeroID},
		{"malformed parent", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","depends_on":["x"]}`}, 400, greyerr.InvalidArgument, "depends_on", ""},
		{"sleep with negative ms", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"sleep","payload":{"ms":-5}}`}, 400, greyerr.InvalidArgument, "payload", "ms must not be negative, got -5"},
		{"sleep with a string", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"sleep","payload":{"ms":"5"}}`}, 400, greyerr.InvalidArgument, "payload", "sleep: want"},
		{"fail with a number", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"fail","payload":7}`}, 400, greyerr.InvalidArgument, "payload", "fail: want"},
		{"batch sleep with negative ms", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"sleep","payload":{"ms":-1}}]}`}, 400, greyerr.InvalidArgument, "tasks[1].payload", "negative"},
		{"negative retries", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","retry":{"max_retries":-1}}`}, 400, greyerr.InvalidArgument, "retry.max_retries", ""},
		{"payload over the limit", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"echo","payload":"` + big(1100) + `"}`}, 413, greyerr.TooLarge, "payload", ""},
		{"body over the limit", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"echo","payload":"` + big(5000) + `"}`}, 413, greyerr.TooLarge, "body", ""},
		{"wrong content type", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop"}`, contentType: "text/plain"}, 400, greyerr.InvalidArgument, "Content-Type", ""},

		// Batches: all or nothing, fields name the item.
		{"batch bad priority", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"noop","priority":11}]}`}, 400, greyerr.InvalidArgument, "tasks[1].priority", ""},
		{"batch wrong type", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"noop","priority":"high"}]}`}, 400, greyerr.InvalidArgument, "tasks[1].priority", ""},
		{"batch unknown field", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"noop"},{"kind":"noop","bogus":true}]}`}, 400, greyerr.InvalidArgument, "tasks[2].bogus", "bogus"},
		{"nested unknown field", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","constraints":{"cpu":1,"gpus":2}}`}, 400, greyerr.InvalidArgument, "constraints.gpus", "constraints.gpus"},
		{"batch nested unknown field", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"noop","retry":{"max_retries":1,"jitter":true}}]}`}, 400, greyerr.InvalidArgument, "tasks[1].retry.jitter", "retry.jitter"},
		{"batch unknown kind", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"nope"}]}`}, 400, greyerr.InvalidArgument, "tasks[1].kind", ""},
		{"batch unknown parent", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"noop","depends_on":["` + zeroID + `"]}]}`}, 400, greyerr.InvalidArgument, "tasks[1].depends_on", ""},
		{"batch payload over the limit", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"echo","payload":"` + big(1100) + `"}]}`}, 413, greyerr.TooLarge, "tasks[1].payload", ""},
		{"batch body over the limit", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"echo","payload":"` + big(5000) + `"}]}`}, 413, greyerr.TooLarge, "body", ""},
		{"batch empty", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[]}`}, 400, greyerr.InvalidArgument, "tasks", ""},
		{"batch without tasks", call{method: "POST", path: "/api/v1/tasks/batch", body: `{}`}, 400, greyerr.InvalidArgument, "tasks", ""},
		{"batch tasks not an array", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":{"kind":"noop"}}`}, 400, greyerr.InvalidArgument, "tasks", ""},
		{"batch wrong content type", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"}]}`, contentType: "multipart/form-data; boundary=x"}, 400, greyerr.InvalidArgument, "Content-Type", ""},
		{"form content type from a browser", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop"}`, contentType: "application/x-www-form-urlencoded", header: map[string]string{"Origin": "https://evil.example"}}, 400, greyerr.InvalidArgument, "Content-Type", "browser"},
		{"form content type with a cookie", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop"}`, contentType: "application/x-www-form-urlencoded", header: map[string]string{"Cookie": "grey_session=x"}}, 400, greyerr.InvalidArgument, "Content-Type", "browser"},

		// Strict JSON: what two parsers could read differently is refused,
		// with the field and the byte offset.
		{"invalid UTF-8 in the payload", call{method: "POST", path: "/api/v1/tasks", body: "{\"kind\":\"echo\",\"payload\":{\"msg\":\"caf\xe9\"}}"}, 400, greyerr.InvalidArgument, "payload.msg", "invalid UTF-8 at byte 36"},
		{"invalid UTF-8 in a payload key", call{method: "POST", path: "/api/v1/tasks", body: "{\"kind\":\"echo\",\"payload\":{\"\xff\":1}}"}, 400, greyerr.InvalidArgument, "payload", "invalid UTF-8 at byte 27"},
		{"invalid UTF-8 in a field", call{method: "POST", path: "/api/v1/tasks", body: "{\"kind\":\"noop\",\"state_key\":\"k\xc3\"}"}, 400, greyerr.InvalidArgument, "state_key", "invalid UTF-8 at byte 29"},
		{"lone surrogate in the payload", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"echo","payload":["\ud800"]}`}, 400, greyerr.InvalidArgument, "payload[0]", "lone UTF-16 surrogate"},
		{"duplicate key", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","kind":"echo"}`}, 400, greyerr.InvalidArgument, "kind", "duplicate key \"kind\" at byte 15"},
		{"duplicate key in the payload", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"echo","payload":{"to":"a","n":1,"to":"b"}}`}, 400, greyerr.InvalidArgument, "payload.to", "duplicate key \"to\""},
		{"duplicate key by escape", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"echo","payload":{"a":1,"\u0061":2}}`}, 400, greyerr.InvalidArgument, "payload.a", "duplicate key"},
		{"case-folded field name", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","Kind":"echo"}`}, 400, greyerr.InvalidArgument, "Kind", "case-sensitive"},
		{"batch duplicate key", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop"},{"kind":"echo","payload":{"x":1,"x":2}}]}`}, 400, greyerr.InvalidArgument, "tasks[1].payload.x", "duplicate key"},
		{"batch case-folded field", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop","PRIORITY":1}]}`}, 400, greyerr.InvalidArgument, "tasks[0].PRIORITY", "case-sensitive"},
		{"complete result duplicate key", call{method: "POST", path: "/api/v1/workers/complete", body: `{"worker_id":"w","reports":[{"task_id":"` + zeroID + `","attempt":1,"status":"completed","result":{"a":1,"a":1},"at":"2026-01-01T00:00:00Z"}]}`}, 400, greyerr.InvalidArgument, "reports[0].result.a", "duplicate key"},

		// Ids.
		{"get unknown id", call{method: "GET", path: "/api/v1/tasks/" + zeroID}, 404, greyerr.NotFound, "", ""},
		{"get malformed id", call{method: "GET", path: "/api/v1/tasks/not-a-uuid"}, 404, greyerr.NotFound, "", ""},
		{"cancel unknown id", call{method: "DELETE", path: "/api/v1/tasks/" + zeroID}, 404, greyerr.NotFound, "", ""},
		{"cancel malformed id", call{method: "DELETE", path: "/api/v1/tasks/42"}, 404, greyerr.NotFound, "", ""},
		{"wait unknown id", call{method: "GET", path: "/api/v1/tasks/" + zeroID + "/wait?timeout=10s"}, 404, greyerr.NotFound, "", ""},
		{"wait malformed id", call{method: "GET", path: "/api/v1/tasks/xyz/wait"}, 404, greyerr.NotFound, "", ""},

		// Query parameters.
		{"list bad status", call{method: "GET", path: "/api/v1/tasks?status=pending,done"}, 400, greyerr.InvalidArgument, "status", "done"},
		{"list limit 0", call{method: "GET", path: "/api/v1/tasks?limit=0"}, 400, greyerr.InvalidArgument, "limit", ""},
		{"list limit 1001", call{method: "GET", path: "/api/v1/tasks?limit=1001"}, 400, greyerr.InvalidArgument, "limit", ""},
		{"list limit not a number", call{method: "GET", path: "/api/v1/tasks?limit=ten"}, 400, greyerr.InvalidArgument, "limit", ""},
		{"list bad cursor", call{method: "GET", path: "/api/v1/tasks?cursor=page-2"}, 400, greyerr.InvalidArgument, "cursor", ""},
		{"watch bad status", call{method: "GET", path: "/api/v1/tasks/watch?status=done"}, 400, greyerr.InvalidArgument, "status", ""},
		{"list empty status", call{method: "GET", path: "/api/v1/tasks?status="}, 400, greyerr.InvalidArgument, "status", "must not be empty"},
		{"watch empty status", call{method: "GET", path: "/api/v1/tasks/watch?status=&kind=noop"}, 400, greyerr.InvalidArgument, "status", "must not be empty"},
		{"list empty kind", call{method: "GET", path: "/api/v1/tasks?kind="}, 400, greyerr.InvalidArgument, "kind", "must not be empty"},
		{"usage empty to", call{method: "GET", path: "/api/v1/cluster/usage?to="}, 400, greyerr.InvalidArgument, "to", "must not be empty"},
		{"wait empty timeout", call{method: "GET", path: "/api/v1/tasks/" + zeroID + "/wait?timeout="}, 400, greyerr.InvalidArgument, "timeout", "must not be empty"},
		{"require_proof null", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","require_proof":null}`}, 400, greyerr.InvalidArgument, "require_proof", "must not be null"},
		{"priority null", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","priority":null}`}, 400, greyerr.InvalidArgument, "priority", "must not be null"},
		{"nested null", call{method: "POST", path: "/api/v1/tasks", body: `{"kind":"noop","retry":{"max_retries":null}}`}, 400, greyerr.InvalidArgument, "retry.max_retries", "must not be null"},
		{"batch null", call{method: "POST", path: "/api/v1/tasks/batch", body: `{"tasks":[{"kind":"noop","run_at":null}]}`}, 400, greyerr.InvalidArgument, "tasks[0].run_at", "must not be null"},
		{"wait timeout without unit", call{method: "GET", path: "/api/v1/tasks/" + zeroID + "/wait?timeout=30"}, 400, greyerr.InvalidArgument, "timeout", ""},
		{"wait timeout negative", call{method: "GET", path: "/api/v1/tasks/" + zeroID + "/wait?timeout=-1s"}, 400, greyerr.InvalidArgument, "timeout", ""},
		{"wait timeout over 5m", call{method: "GET", path: "/api/v1/tasks/" + zeroID + "/wait?timeout=10m"}, 400, greyerr.InvalidArgument, "timeout", ""},

		// Tenants.
		{"submit bad tenant", call{method: "POST", path: "/api/v1/tasks", tenant: "ACME", body: `{"kind":"noop"}`}, 400, greyerr.InvalidArgument, api.TenantHeader, ""},
		{"batch bad tenant", call{method: "POST", path: "/api/v1/tasks/batch", tenant: "a b", body: `{"tasks":[{"kind":"noop"}]}`}, 400, greyerr.InvalidArgument, api.TenantHeader, ""},
		{"list bad tenant", call{method: "GET", path: "/api/v1/tasks", tenant: "-acme"}, 400, greyerr.InvalidArgument, api.TenantHeader, ""},
		{"get bad tenant", call{method: "GET", path: "/api/v1/tasks/" + zeroID, tenant: "Acme"}, 400, greyerr.InvalidArgument, api.TenantHeader, ""},
		{"cancel bad tenant", call{method: "DELETE", path: "/api/v1/tasks/" + zeroID, tenant: "acme!"}, 400, greyerr.InvalidArgument, api.TenantHeader, ""},
		{"wait bad tenant", call{method: "GET", path: "/api/v1/tasks/" + zeroID + "/wait", tenant: strings.Repeat("a", 64)}, 400, greyerr.InvalidArgument, api.TenantHeader, ""},
		{"watch bad tenant", call{method: "GET", path: "/api/v1/tasks/watch", tenant: "ACME"}, 400, greyerr.InvalidArgument, api.TenantHeader, ""},

		// Worker protocol.
		{"lease without worker id", call{method: "POST", path: "/api/v1/workers/lease", body: `{"worker_id":"","kinds":["noop"],"max":1}`}, 400, greyerr.InvalidArgument, "worker_id", ""},
		{"lease without kinds", call{method: "POST", path: "/api/v1/workers/lease", body: `{"worker_id":"w","kinds":[],"max":1}`}, 400, greyerr.InvalidArgument, "kinds", ""},
		{"lease max 0", call{method: "POST", path: "/api/v1/workers/lease", body: `{"worker_id":"w","kinds":["noop"],"max":0}`}, 400, greyerr.InvalidArgument, "max", ""},
		{"lease wait over 60s", call{method: "POST", path: "/api/v1/workers/lease", body: `{"worker_id":"w","kinds":["noop"],"max":1,"wait":"2m"}`}, 400, greyerr.InvalidArgument, "wait", ""},
		{"lease unknown field", call{method: "POST", path: "/api/v1/workers/lease", body: `{"worker_id":"w","kinds":["noop"],"max":1,"tenant":"acme"}`}, 400, greyerr.InvalidArgument, "tenant", ""},
		{"lease wrong content type", call{method: "POST", path: "/api/v1/workers/lease", body: `{"worker_id":"w","kinds":["noop"],"max":1}`, contentType: "text/plain"}, 400, greyerr.InvalidArgument, "Content-Type", ""},
		{"heartbeat without worker id", call{method: "POST", path: "/api/v1/workers/heartbeat", body: `{"leases":[]}`}, 400, greyerr.InvalidArgument, "worker_id", ""},
		{"heartbeat malformed", call{method: "POST", path: "/api/v1/workers/heartbeat", body: `{"worker_id":"w","leases":[`}, 400, greyerr.InvalidArgument, "body", ""},
		{"complete bad status", call{method: "POST", path: "/api/v1/workers/complete", body: `{"worker_id":"w","reports":[{"task_id":"` + zeroID + `","attempt":1,"status":"pending","at":"2026-01-01T00:00:00Z"}]}`}, 400, greyerr.InvalidArgument, "reports[0].status", ""},
		{"complete without worker id", call{method: "POST", path: "/api/v1/workers/complete", body: `{"reports":[]}`}, 400, greyerr.InvalidArgument, "worker_id", ""},

		// Routes.
		{"unknown route", call{method: "GET", path: "/api/v1/nope"}, 404, greyerr.NotFound, "", ""},
		{"unknown version", call{method: "POST", path: "/api/v2/tasks", body: `{"kind":"noop"}`}, 404, greyerr.NotFound, "", ""},
		{"unknown method", call{method: "PUT", path: "/api/v1/tasks", body: `{"kind":"noop"}`}, 405, greyerr.MethodNotAllowed, "", "allowed: GET, HEAD, POST"},
		{"unknown method on a task", call{method: "PATCH", path: "/api/v1/tasks/" + zeroID}, 405, greyerr.MethodNotAllowed, "", "allowed: GET, HEAD, DELETE"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.c.bad = true
				eb := e.fail(t, tc.c, tc.status, tc.code, tc.field)
				if tc.msg != "" && !strings.Contains(eb.Message, tc.msg) {
					t.Errorf("message %q does not mention %q", eb.Message, tc.msg)
				}
				// Nothing was written.
				e.storeLen(t, 0)
			})
		}
	})
	e.storeLen(t, 0)
	for _, ten := range []string{"", "acme"} {
		if l := e.list(t, ten, ""); len(l.Tasks) != 0 {
			t.Errorf("tenant %q lists %d tasks after bad requests", ten, len(l.Tasks))
		}
	}
	if e.node.Engine.KnownKind("nope") {
		t.Error("an unknown kind at submit got registered")
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{Kinds: []string{"manual"}}, api.Options{})
	e.node.StartWorkers(t, worker.Options{LeaseWait: time.Second}, nil)
	const acme, globex = "acme", "globex"

	acmeWatch := e.watch(t, acme, "")
	globexWatch := e.watch(t, globex, "")

	a := e.submit(t, acme, map[string]any{"kind": "manual", "payload": "secret"})
	by := "/api/v1/tasks/" + a.ID

	// By-id routes answer 404 (not 403) for another tenant's task.
	e.fail(t, call{method: "GET", path: by, tenant: globex}, 404, greyerr.NotFound, "")
	e.fail(t, call{method: "GET", path: by}, 404, greyerr.NotFound, "") // the default tenant
	start := time.Now()
	e.fail(t, call{method: "GET", path: by + "/wait?timeout=5s", tenant: globex}, 404, greyerr.NotFound, "")
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("wait on another tenant's task took %s", el)
	}
	e.fail(t, call{method: "DELETE", path: by, tenant: globex}, 404, greyerr.NotFound, "")
	if g := e.get(t, acme, a.ID); g.Status != task.Pending {
		t.Errorf("acme's task after globex's cancel: %s", g.Status)
	}

	// Lists hold only the caller's tasks.
	g := e.submit(t, globex, map[string]any{"kind": "manual"})
	if l := e.list(t, acme, ""); !slices.Equal(ids(l.Tasks), []string{a.ID}) {
		t.Errorf("acme lists %v, want [%s]", ids(l.Tasks), a.ID)
	}
	if l := e.list(t, globex, "?status=pending&kind=manual"); !slices.Equal(ids(l.Tasks), []string{g.ID}) {
		t.Errorf("globex lists %v, want [%s]", ids(l.Tasks), g.ID)
	}
	// A cursor is bound to its tenant and filter: acme's cursor, a raw id
	// or a cursor for another filter is a 400 for globex, saying nothing of
	// acme.
	acmeCursor := archive.EncodeCursor(acme, archive.Filter{}, a.ID)
	for _, q := range []string{"?cursor=" + acmeCursor, "?cursor=" + a.ID, "?kind=manual&cursor=" + archive.EncodeCursor(globex, archive.Filter{}, g.ID)} {
		eb := e.fail(t, call{method: "GET", path: "/api/v1/tasks" + q, tenant: globex}, http.StatusBadRequest, greyerr.InvalidArgument, "cursor")
		if strings.Contains(eb.Message, acme) {
			t.Errorf("cursor error names acme: %s", eb.Message)
		}
	}
	if l := e.list(t, globex, "?cursor="+archive.EncodeCursor(globex, archive.Filter{}, g.ID)); len(l.Tasks) != 0 {
		t.Errorf("globex's page after its only task = %v", ids(l.Tasks))
	}

	// Idempotency keys are per tenant.
	spec := map[string]any{"kind": "manual", "idempotency_key": "order-1"}
	ak := e.submit(t, acme, spec)
	gk := e.submit(t, globex, spec)
	if ak.ID == gk.ID || gk.TenantID != globex {
		t.Errorf("the same key across tenants: acme %s, globex %s of %s", ak.ID, gk.ID, gk.TenantID)
	}
	var again task.Task
	e.ok(t, call{method: "POST", path: "/api/v1/tasks", tenant: globex, body: spec}, http.StatusOK, &again)
	if again.ID != gk.ID {
		t.Errorf("globex replay = %s, want %s", again.ID, gk.ID)
	}
	e.ok(t, call{method: "POST", path: "/api/v1/tasks", tenant: acme, body: spec}, http.StatusOK, &again)
	if again.ID != ak.ID {
		t.Errorf("acme replay = %s, want %s", again.ID, ak.ID)
	}

	// depends_on cannot name another tenant's task, and nothing is written.
	n := e.node.Store.Len()
	eb := e.fail(t, call{method: "POST", path: "/api/v1/tasks", tenant: globex, body: map[string]any{"kind": "manual", "depends_on": []string{a.ID}}}, 400, greyerr.InvalidArgument, "depends_on")
	if !strings.Contains(eb.Message, "not found") {
		t.Errorf("depends_on refusal message = %q", eb.Message)
	}
	e.fail(t, call{method: "POST", path: "/api/v1/tasks/batch", tenant: globex, body: map[string]any{"tasks": []map[string]any{
		{"kind": "manual"}, {"kind": "manual", "depends_on": []string{g.ID, a.ID}},
	}}}, 400, greyerr.InvalidArgument, "tasks[1].depends_on")
	e.storeLen(t, n)
	// The owner may.
	if p := e.submit(t, acme, map[string]any{"kind": "manual", "depends_on": []string{a.ID}}); p.Type != task.Pipeline {
		t.Errorf("acme pipeline = %+v", p)
	}

	// Watches deliver only the caller's changes. acme's echo task runs to
	// completion first; then globex's; globex's stream shows its own task
	// only, and hub order means acme's events would have come before.
	ae := e.submit(t, acme, map[string]any{"kind": "echo", "payload": 1})
	e.ok(t, call{method: "GET", path: "/api/v1/tasks/" + ae.ID + "/wait?timeout=20s", tenant: acme}, http.StatusOK, nil)
	ge := e.submit(t, globex, map[string]any{"kind": "echo", "payload": 2})
	for _, ev := range globexWatch.until(ge.ID, task.Completed) {
		if ev.TenantID != globex {
			t.Errorf("globex watch delivered %s of %s (%s)", ev.ID, ev.TenantID, ev.Status)
		}
	}
	for _, ev := range acmeWatch.until(ae.ID, task.Completed) {
		if ev.TenantID != acme {
			t.Errorf("acme watch delivered %s of %s (%s)", ev.ID, ev.TenantID, ev.Status)
		}
	}
}

// TestUnavailableWithoutLeader stops Raft under the API: readiness and
// leasing answer 503 with Retry-After.
func TestUnavailableWithoutLeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	e.ok(t, call{method: "GET", path: "/readyz"}, http.StatusOK, nil)
	e.node.Close()

	e.fail(t, call{method: "GET", path: "/readyz"}, http.StatusServiceUnavailable, greyerr.Unavailable, "")
	// Not a submit: cluster.Apply on a shut-down raft can hang (the
	// command may be queued on raft's buffered apply channel that nobody
	// drains, and Apply waits on its future without watching ctx).
	e.fail(t, call{method: "POST", path: "/api/v1/workers/lease", body: worker.LeaseRequest{WorkerID: "w", Kinds: []string{"noop"}, Max: 1}}, http.StatusServiceUnavailable, greyerr.Unavailable, "")
	r := e.do(t, call{method: "POST", path: "/api/v1/workers/lease", body: worker.LeaseRequest{WorkerID: "w", Kinds: []string{"noop"}, Max: 1}})
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("lease Retry-After = %q, want 1", ra)
	}
	var ci engine.ClusterInfo
	e.ok(t, call{method: "GET", path: "/api/v1/cluster"}, http.StatusOK, &ci)
	if ci.State != "shutdown" || ci.LeaderID != "" {
		t.Errorf("cluster after shutdown = %s, leader %q", ci.State, ci.LeaderID)
	}
	e.ok(t, call{method: "GET", path: "/healthz"}, http.StatusOK, nil)
}

// The proof and replay routes are tenant-scoped like every task route, and
// their answers match the spec.
func TestProofRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	e.node.StartWorkers(t, worker.Options{LeaseWait: time.Second}, nil)
	a := e.submit(t, "acme", map[string]any{"kind": "echo", "payload": map[string]any{"secret": "<&>"}})
	by := "/api/v1/tasks/" + a.ID
	var fin task.Task
	e.ok(t, call{method: "GET", path: by + "/wait?timeout=10s", tenant: "acme"}, http.StatusOK, &fin)
	if fin.Status != task.Completed || fin.ProofID == "" {
		t.Fatalf("task = %s, proof %q", fin.Status, fin.ProofID)
	}
	var rec proof.Record
	e.ok(t, call{method: "GET", path: by + "/proof", tenant: "acme"}, http.StatusOK, &rec)
	if !rec.Verified || rec.ProofID != fin.ProofID || rec.Short.TaskID != a.ID {
		t.Fatalf("proof record = %+v", rec)
	}
	var rp proof.Replay
	e.ok(t, call{method: "POST", path: by + "/replay", tenant: "acme"}, http.StatusOK, &rp)
	if !rp.Match {
		t.Fatalf("replay = %+v", rp)
	}
	var keys struct {
		Keys []proof.NodeKey `json:"keys"`
	}
	e.ok(t, call{method: "GET", path: "/api/v1/cluster/keys", tenant: "acme"}, http.StatusOK, &keys)
	if len(keys.Keys) != 1 || keys.Keys[0].KeyID != e.node.Signer.Key.KeyID() {
		t.Fatalf("keys = %+v", keys)
	}
	e.fail(t, call{method: "GET", path: by + "/proof", tenant: "globex"}, 404, greyerr.NotFound, "")
	e.fail(t, call{method: "POST", path: by + "/replay", tenant: "globex"}, 404, greyerr.NotFound, "")
	// A pending task has no proof yet; the 404 says why.
	p := e.submit(t, "acme", map[string]any{"kind": "echo", "run_at": time.Now().Add(time.Hour)})
	eb := e.fail(t, call{method: "GET", path: "/api/v1/tasks/" + p.ID + "/proof", tenant: "acme"}, 404, greyerr.NotFound, "")
	if !strings.Contains(eb.Message, "proofs are signed when a task completes") {
		t.Errorf("404 for a pending task's proof says %q", eb.Message)
	}
	e.fail(t, call{method: "POST", path: "/api/v1/tasks/" + p.ID + "/replay", tenant: "acme"}, 409, greyerr.FailedPrecondition, "")
}
