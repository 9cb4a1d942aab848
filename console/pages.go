package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/membership"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// Bounds of what one page reads.
const (
	// overviewTenants caps the tenants the overview samples.
	overviewTenants = 20
	// sampleLimit is the page size of the overview's samples.
	sampleLimit = 1000
	// defaultPageSize is the tasks page's page size.
	defaultPageSize = 50
	// maxPageSize bounds ?limit=.
	maxPageSize = 500
	// payloadScanLimit bounds the tasks one payload-filtered page reads.
	payloadScanLimit = 10000
	// pipelineNodes bounds the tasks of a drawn pipeline.
	pipelineNodes = 200
	// pipelineScanPages bounds the pages of 1000 newest tasks searched
	// for a pipeline's dependants.
	pipelineScanPages = 2
)

// redirect is returned by a page builder to send the browser elsewhere.
type redirect string

func (r redirect) Error() string { return "redirect to " + string(r) }

// ---------------------------------------------------------------- overview

// kindRow is one (tenant, kind) line of the overview.
type kindRow struct {
	Tenant, Kind string
	// Queued are pending or retrying, Running leased or running; More
	// when the sample was full (the counts are lower bounds).
	Queued, Running int
	More            bool
	// Throughput is tasks finished per minute over the last 5 minutes.
	Throughput float64
	// Finished per minute over the last 15 minutes (oldest first).
	Finished []float64
	// LatencyP50 and LatencyMax: from creation to first lease, of the
	// tasks finished in the last 15 minutes; OldestQueued the age of the
	// oldest queued task sampled.
	LatencyP50, LatencyMax, OldestQueued time.Duration
	Failed                               int
}

type overviewData struct {
	Cluster  *membership.ClusterInfo
	Ready    string
	Rows     []kindRow
	Statuses []statusCount
	// Throughput is the sparkline of all rows' finished tasks.
	Spark   []float64
	Tenants int
	Capped  bool
	Errors  []string
}

type statusCount struct {
	Status string
	N      int
}

func (c *Console) overview(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	d, err := c.overviewData(ctx, s)
	if err != nil {
		return "", nil, err
	}
	v := c.newView(ctx, r, s, "Overview")
	v.Data = d
	return "overview", v, nil
}

func (c *Console) overviewLive(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	d, err := c.overviewData(ctx, s)
	return "overview", d, err
}

// visibleTenants are the tenants whose tasks the session may read: every
// tenant for one who may list them, else the principal's.
func (c *Console) visibleTenants(ctx context.Context, s *session) ([]string, bool, error) {
	if s.tenant != "" {
		return []string{s.tenant}, false, nil
	}
	if c.can(ctx, s, http.MethodGet, "/api/v1/tenants") {
		ts, err := c.client(s).ListTenants(ctx)
		if err != nil {
			return nil, false, err
		}
		ids := make([]string, 0, len(ts))
		for _, t := range ts {
			ids = append(ids, t.ID)
		}
		if len(ids) == 0 {
			ids = []string{"default"}
		}
		slices.Sort(ids)
		capped := len(ids) > overviewTenants
		if capped {
			ids = ids[:overviewTenants]
		}
		return ids, capped, nil
	}
	p := s.principal
	if p == nil || p.AllTenantsGrant() {
		return []string{"default"}, false, nil
	}
	return p.Tenants(), false, nil
}

func (c *Console) overviewData(ctx context.Context, s *session) (*overviewData, error) {
	d := &overviewData{}
	cl := c.client(s)
	info, err := cl.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	d.Cluster = info
	d.Ready = "ready"
	if rd, err := cl.Readiness(ctx); err != nil {
		d.Ready = "not ready: " + err.Error()
	} else if rd != nil && rd.Status != "" {
		d.Ready = rd.Status
	}
	for st, n := range info.Tasks {
		d.Statuses = append(d.Statuses, statusCount{string(st), n})
	}
	slices.SortFunc(d.Statuses, func(a, b statusCount) int { return cmp.Compare(a.Status, b.Status) })
	if !c.can(ctx, s, http.MethodGet, "/api/v1/tasks") {
		return d, nil
	}
	tenants, capped, err := c.visibleTenants(ctx, s)
	if err != nil {
		return nil, err
	}
	d.Tenants, d.Capped = len(tenants), capped
	now := c.opts.Now()
	d.Spark = make([]float64, 15)
	for _, ten := range tenants {
		rows, err := c.tenantRows(ctx, s, ten, now)
		if err != nil {
			d.Errors = append(d.Errors, fmt.Sprintf("%s: %v", ten, err))
			continue
		}
		for _, row := range rows {
			for i, f := range row.Finished {
				d.Spark[i] += f
			}
		}
		d.Rows = append(d.Rows, rows...)
	}
	return d, nil
}

// tenantRows samples one tenant's queue and recent finishes per kind.
func (c *Console) tenantRows(ctx context.Context, s *session, ten string, now time.Time) ([]kindRow, error) {
	ts := *s
	ts.header = s.header.Clone()
	ts.tenant = ten
	ts.header.Set("X-Grey-Tenant", ten)
	cl := c.client(&ts)
	rows := map[string]*kindRow{}
	row := func(kind string) *kindRow {
		if rows[kind] == nil {
			rows[kind] = &kindRow{Tenant: ten, Kind: kind, Finished: make([]float64, 15)}
		}
		return rows[kind]
	}
	active, err := cl.List(ctx, client.ListOptions{Status: []task.Status{task.Pending, task.Retrying, task.Leased, task.Running}, Limit: sampleLimit})
	if err != nil {
		return nil, err
	}
	for _, t := range active.Tasks {
		k := row(t.Kind)
		k.More = active.NextCursor != ""
		switch t.Status {
		case task.Pending, task.Retrying:
			k.Queued++
			if age := now.Sub(t.CreatedAt); age > k.OldestQueued {
				k.OldestQueued = age
			}
		default:
			k.Running++
		}
	}
	done, err := cl.List(ctx, client.ListOptions{Status: []task.Status{task.Completed, task.Failed}, FinishedFrom: now.Add(-15 * time.Minute), Limit: sampleLimit})
	if err != nil {
		return nil, err
	}
	lat := map[string][]time.Duration{}
	for _, t := range done.Tasks {
		k := row(t.Kind)
		if t.FinishedAt == nil {
			continue
		}
		if t.Status == task.Failed {
			k.Failed++
		}
		ago := now.Sub(*t.FinishedAt)
		if b := 14 - int(ago/time.Minute); b >= 0 && b < 15 {
			k.Finished[b]++
		}
		if ago <= 5*time.Minute {
			k.Throughput += 1.0 / 5
		}
		if len(t.Attempts) > 0 {
			lat[t.Kind] = append(lat[t.Kind], t.Attempts[0].LeasedAt.Sub(t.CreatedAt))
		}
	}
	out := make([]kindRow, 0, len(rows))
	for kind, k := range rows {
		if l := lat[kind]; len(l) > 0 {
			slices.Sort(l)
			k.LatencyP50, k.LatencyMax = l[len(l)/2], l[len(l)-1]
		}
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b kindRow) int { return cmp.Compare(a.Kind, b.Kind) })
	return out, nil
}

// ------------------------------------------------------------------- tasks

// taskFilter is the tasks page's form.
type taskFilter struct {
	ID, Tenant, Kind, Label, From, To, Payload, Cursor string
	Status                                             []string
	Limit                                              int
}

type tasksData struct {
	Filter   taskFilter
	Statuses []string
	Tasks    []*task.Task
	// Next is the URL of the next page ("" on the last).
	Next string
	// Scanned counts the tasks read to apply the payload filter.
	Scanned   int
	CanSubmit bool
	Kinds     []string
}

var allStatuses = []string{"pending", "leased", "running", "retrying", "completed", "failed", "cancelled"}

func parseFilter(r *http.Request) (taskFilter, client.ListOptions, error) {
	q := r.URL.Query()
	f := taskFilter{ID: strings.TrimSpace(q.Get("id")), Tenant: q.Get("tenant"), Kind: strings.TrimSpace(q.Get("kind")),
		Label: strings.TrimSpace(q.Get("label")), From: q.Get("from"), To: q.Get("to"),
		Payload: strings.TrimSpace(q.Get("payload")), Cursor: q.Get("cursor"), Limit: defaultPageSize}
	var o client.ListOptions
	for _, st := range q["status"] {
		if st == "" {
			continue
		}
		if !slices.Contains(allStatuses, st) {
			return f, o, greyerr.Invalid("status", "%q is not a task status", st)
		}
		f.Status = append(f.Status, st)
		o.Status = append(o.Status, task.Status(st))
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPageSize {
			return f, o, greyerr.Invalid("limit", "must be a number from 1 to %d", maxPageSize)
		}
		f.Limit = n
	}
	o.Kind, o.Limit, o.Cursor = f.Kind, f.Limit, f.Cursor
	if f.Label != "" {
		o.Labels = map[string]string{}
		for _, kv := range strings.Split(f.Label, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return f, o, greyerr.Invalid("label", "%q is not key=value", kv)
			}
			o.Labels[k] = v
		}
	}
	var err error
	if o.FinishedFrom, err = parseTime("from", f.From); err != nil {
		return f, o, err
	}
	if o.FinishedTo, err = parseTime("to", f.To); err != nil {
		return f, o, err
	}
	if f.Payload != "" {
		if _, _, ok := strings.Cut(f.Payload, "="); !ok {
			return f, o, greyerr.Invalid("payload", "%q is not field=value (a dotted path into the payload: image.format=png)", f.Payload)
		}
	}
	return f, o, nil
}

// parseTime reads a datetime-local input (UTC) or RFC 3339.
func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, greyerr.Invalid(field, "%q is not a time (2006-01-02T15:04, UTC)", v)
}

func (c *Console) tasks(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	f, o, err := parseFilter(r)
	v := c.newView(ctx, r, s, "Tasks")
	d := &tasksData{Filter: f, Statuses: allStatuses, CanSubmit: c.can(ctx, s, http.MethodPost, "/api/v1/tasks"),
		Kinds: []string{"noop", "echo", "sleep", "fail"}}
	v.Data = d
	if err != nil {
		v.Error = err.Error()
		return "tasks", v, nil
	}
	if f.ID != "" {
		if !task.ValidID(f.ID) {
			v.Error = fmt.Sprintf("%q is not a task id (a UUID)", f.ID)
			return "tasks", v, nil
		}
		return "", nil, redirect(Prefix + "tasks/" + f.ID + tenantQuery(s, "?"))
	}
	cl := c.client(s)
	if f.Payload == "" {
		page, err := cl.List(ctx, o)
		if err != nil {
			v.Error = err.Error()
			return "tasks", v, nil
		}
		d.Tasks = page.Tasks
		if page.NextCursor != "" {
			d.Next = nextURL(r, page.NextCursor)
		}
		return "tasks", v, nil
	}
	// The list API has no payload filter: read pages of 1000 and keep
	// the matches, up to a page of them or payloadScanLimit tasks read.
	path, want, _ := strings.Cut(f.Payload, "=")
	o.Limit = 1000
	for d.Scanned < payloadScanLimit && len(d.Tasks) < f.Limit {
		page, err := cl.List(ctx, o)
		if err != nil {
			v.Error = err.Error()
			return "tasks", v, nil
		}
		d.Scanned += len(page.Tasks)
		for _, t := range page.Tasks {
			if payloadMatch(t.Payload, path, want) {
				d.Tasks = append(d.Tasks, t)
			}
		}
		if page.NextCursor == "" {
			return "tasks", v, nil
		}
		o.Cursor = page.NextCursor
	}
	d.Next = nextURL(r, o.Cursor)
	return "tasks", v, nil
}

func nextURL(r *http.Request, cursor string) string {
	q := r.URL.Query()
	q.Set("cursor", cursor)
	return Prefix + "tasks?" + q.Encode()
}

// payloadMatch reports whether the payload's value at the dotted path is
// want: a string's text, or a number's, bool's or null's JSON.
func payloadMatch(payload json.RawMessage, path, want string) bool {
	if len(payload) == 0 {
		return false
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return false
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return false
			}
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return false
			}
			v = x[i]
		default:
			return false
		}
	}
	switch x := v.(type) {
	case string:
		return x == want
	case json.Number:
		return x.String() == want
	case bool:
		return strconv.FormatBool(x) == want
	case nil:
		return want == "null"
	}
	return false
}

// -------------------------------------------------------------- task page

type taskData struct {
	Task        *task.Task
	Proof       *proof.Record
	ProofErr    string
	Replay      *proof.Replay
	Finished    bool
	CanCancel   bool
	CanRetry    bool
	CanReplay   bool
	TenantQuery string
	Notice      string
}

func (c *Console) taskData(ctx context.Context, r *http.Request, s *session) (*taskData, error) {
	id := r.PathValue("id")
	if !task.ValidID(id) {
		return nil, greyerr.Invalid("id", "%q is not a task id", id)
	}
	cl := c.client(s)
	t, err := cl.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &taskData{Task: t, Finished: t.Status.Terminal(), TenantQuery: tenantQuery(s, "?")}
	if t.ProofID != "" {
		if d.Proof, err = cl.Proof(ctx, id); err != nil {
			d.ProofErr = err.Error()
		}
	}
	d.CanCancel = !d.Finished && c.can(ctx, s, http.MethodDelete, "/api/v1/tasks/{id}")
	d.CanRetry = (t.Status == task.Failed || t.Status == task.Cancelled) && c.can(ctx, s, http.MethodPost, "/api/v1/tasks")
	d.CanReplay = t.Status == task.Completed && c.can(ctx, s, http.MethodPost, "/api/v1/tasks/{id}/replay")
	return d, nil
}

func (c *Console) taskPage(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	d, err := c.taskData(ctx, r, s)
	if err != nil {
		return "", nil, err
	}
	if r.URL.Query().Get("retried_from") != "" {
		d.Notice = "Resubmitted as a new task (same spec, new id) from " + r.URL.Query().Get("retried_from")
	}
	v := c.newView(ctx, r, s, "Task "+d.Task.ID)
	v.Data = d
	return "task", v, nil
}

func (c *Console) taskLive(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	d, err := c.taskData(ctx, r, s)
	return "task", d, err
}

// submit creates a task from the form through POST /api/v1/tasks.
func (c *Console) submit(ctx context.Context, r *http.Request, s *session) (string, string, any, error) {
	spec := task.Spec{Kind: strings.TrimSpace(r.PostFormValue("kind"))}
	if p := strings.TrimSpace(r.PostFormValue("payload")); p != "" {
		if !json.Valid([]byte(p)) {
			return "", "", nil, greyerr.Invalid("payload", "is not JSON")
		}
		spec.Payload = json.RawMessage(p)
	}
	if p := strings.TrimSpace(r.PostFormValue("priority")); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", "", nil, greyerr.Invalid("priority", "%q is not a number", p)
		}
		spec.Priority = &n
	}
	if l := strings.TrimSpace(r.PostFormValue("labels")); l != "" {
		spec.Constraints = &task.Constraints{Labels: map[string]string{}}
		for _, kv := range strings.Split(l, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return "", "", nil, greyerr.Invalid("labels", "%q is not key=value", kv)
			}
			spec.Constraints.Labels[k] = v
		}
	}
	if deps := strings.TrimSpace(r.PostFormValue("depends_on")); deps != "" {
		for _, id := range strings.Split(deps, ",") {
			spec.DependsOn = append(spec.DependsOn, strings.TrimSpace(id))
		}
	}
	t, err := c.client(s).Submit(ctx, spec)
	if err != nil {
		return "", "", nil, err
	}
	return Prefix + "tasks/" + t.ID + tenantQuery(s, "?"), "", nil, nil
}

func (c *Console) cancel(ctx context.Context, r *http.Request, s *session) (string, string, any, error) {
	id := r.PathValue("id")
	if _, err := c.client(s).Cancel(ctx, id); err != nil {
		return "", "", nil, err
	}
	return Prefix + "tasks/" + id + tenantQuery(s, "?"), "", nil, nil
}

// retry resubmits a failed or cancelled task: the same spec, a new id
// (the idempotency key is dropped, or the API would answer the old task).
func (c *Console) retry(ctx context.Context, r *http.Request, s *session) (string, string, any, error) {
	id := r.PathValue("id")
	cl := c.client(s)
	t, err := cl.Get(ctx, id)
	if err != nil {
		return "", "", nil, err
	}
	if t.Status != task.Failed && t.Status != task.Cancelled {
		return "", "", nil, greyerr.New(greyerr.FailedPrecondition, "task %s is %s: only a failed or cancelled task is retried", id, t.Status)
	}
	spec := t.Spec
	spec.IdempotencyKey = ""
	nt, err := cl.Submit(ctx, spec)
	if err != nil {
		return "", "", nil, err
	}
	to := Prefix + "tasks/" + nt.ID + "?retried_from=" + id
	if s.tenant != "" {
		to += "&tenant=" + s.tenant
	}
	return to, "", nil, nil
}

// replay re-executes a completed task and shows the comparison.
func (c *Console) replay(ctx context.Context, r *http.Request, s *session) (string, string, any, error) {
	rep, err := c.client(s).Replay(ctx, r.PathValue("id"))
	if err != nil {
		return "", "", nil, err
	}
	d, err := c.taskData(ctx, r, s)
	if err != nil {
		return "", "", nil, err
	}
	d.Replay = rep
	v := c.newView(ctx, r, s, "Task "+d.Task.ID)
	v.Data = d
	return "", "task", v, nil
}

// --------------------------------------------------------------- pipeline

type pipelineData struct {
	Root    *task.Task
	Graph   *dag
	Missing []string
	Capped  bool
	// Scanned counts the newest tasks searched for dependants.
	Scanned int
	// TenantQuery keeps the session's tenant on links.
	TenantQuery string
}

// pipeline draws the depends_on graph above a task: the task, what it
// depends on, and so on up to pipelineNodes tasks.
func (c *Console) pipeline(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	id := r.PathValue("id")
	if !task.ValidID(id) {
		return "", nil, greyerr.Invalid("id", "%q is not a task id", id)
	}
	cl := c.client(s)
	root, err := cl.Get(ctx, id)
	if err != nil {
		return "", nil, err
	}
	d := &pipelineData{Root: root}
	tasks := map[string]*task.Task{id: root}
	// ancestors fetches, breadth first, what the queued tasks depend on.
	ancestors := func(queue []*task.Task) error {
		for len(queue) > 0 {
			t := queue[0]
			queue = queue[1:]
			for _, dep := range t.DependsOn {
				if _, seen := tasks[dep]; seen {
					continue
				}
				if len(tasks) >= pipelineNodes {
					d.Capped = true
					return nil
				}
				dt, err := cl.Get(ctx, dep)
				if err != nil {
					if greyerr.CodeOf(err) != greyerr.NotFound {
						return err
					}
					// Collected (retention) or never existed.
					d.Missing = append(d.Missing, dep)
					tasks[dep] = nil
					continue
				}
				tasks[dep] = dt
				queue = append(queue, dt)
			}
		}
		return nil
	}
	if err := ancestors([]*task.Task{root}); err != nil {
		return "", nil, err
	}
	// Dependants: the API keeps no reverse index, so look among the
	// tenant's newest tasks for those depending on the graph, until no
	// more join (a dependant is always newer than what it depends on).
	o := client.ListOptions{Limit: 1000}
	var recent []*task.Task
	for range pipelineScanPages {
		page, err := cl.List(ctx, o)
		if err != nil {
			return "", nil, err
		}
		recent = append(recent, page.Tasks...)
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	d.Scanned = len(recent)
	for joined := true; joined && !d.Capped; {
		joined = false
		var added []*task.Task
		for _, t := range recent {
			if _, in := tasks[t.ID]; in || len(tasks) >= pipelineNodes {
				continue
			}
			for _, dep := range t.DependsOn {
				if tasks[dep] != nil {
					tasks[t.ID] = t
					added = append(added, t)
					joined = true
					break
				}
			}
		}
		if err := ancestors(added); err != nil {
			return "", nil, err
		}
	}
	d.TenantQuery = tenantQuery(s, "?")
	d.Graph = layoutDAG(tasks, id, tenantQuery(s, "?"))
	v := c.newView(ctx, r, s, "Pipeline of "+id)
	v.Data = d
	return "pipeline", v, nil
}

// ----------------------------------------------------------------- tenants

type tenantRow struct {
	Tenant *tenant.Tenant
	Usage  *tenant.Usage
	Cost   float64
	Queued int
}

type tenantsData struct {
	Rows []tenantRow
	// Own are the tenants of a principal who may not list tenants.
	Own []string
	// All is set for a principal who may list every tenant.
	All      bool
	CostBars []bar
	Since    time.Time
}

func (c *Console) tenants(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	v := c.newView(ctx, r, s, "Tenants")
	d := &tenantsData{}
	v.Data = d
	if !c.can(ctx, s, http.MethodGet, "/api/v1/tenants") {
		ts, _, err := c.visibleTenants(ctx, s)
		if err != nil {
			return "", nil, err
		}
		d.Own = ts
		return "tenants", v, nil
	}
	d.All = true
	cl := c.client(s)
	ts, err := cl.ListTenants(ctx)
	if err != nil {
		return "", nil, err
	}
	d.Since = c.opts.Now().Add(-24 * time.Hour).Truncate(time.Hour)
	rep, err := cl.Usage(ctx, client.UsageOptions{From: d.Since})
	if err != nil {
		return "", nil, err
	}
	byID := map[string]int{}
	for i, u := range rep.Tenants {
		byID[u.TenantID] = i
	}
	for _, t := range ts {
		row := tenantRow{Tenant: t}
		if i, ok := byID[t.ID]; ok {
			u := rep.Tenants[i]
			row.Usage, row.Cost, row.Queued = &u.Usage, u.Cost.Total, u.Load.Queued
		}
		d.Rows = append(d.Rows, row)
		d.CostBars = append(d.CostBars, bar{Label: t.ID, Value: row.Cost})
	}
	return "tenants", v, nil
}

type tenantData struct {
	ID     string
	Tenant *tenant.Tenant
	// Hours are the last 24 hours, oldest first.
	Hours     []time.Time
	Completed []float64
	Failed    []float64
	Cost      []float64
	CPU       []float64
	TotalCost float64
	Keys      []*client.APIKey
	KeysErr   string
	CanAdmin  bool
	CanKeys   bool
}

func (c *Console) tenantPage(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	id := r.PathValue("id")
	if !task.ValidTenant(id) {
		return "", nil, greyerr.Invalid("id", "%q is not a tenant id", id)
	}
	ts := *s
	ts.header = s.header.Clone()
	ts.tenant = id
	ts.header.Set("X-Grey-Tenant", id)
	d := &tenantData{ID: id, CanAdmin: c.can(ctx, s, http.MethodGet, "/api/v1/tenants/{id}"), CanKeys: c.can(ctx, &ts, http.MethodGet, "/api/v1/apikeys")}
	if !d.CanAdmin && !d.CanKeys && (s.principal == nil || !s.principal.ActsFor(id)) {
		return "", nil, greyerr.New(greyerr.NotFound, "tenant %s not found", id)
	}
	cl := c.client(&ts)
	if d.CanAdmin {
		t, err := cl.GetTenant(ctx, id)
		if err != nil {
			return "", nil, err
		}
		d.Tenant = t
		now := c.opts.Now().Truncate(time.Hour)
		for h := 23; h >= 0; h-- {
			from := now.Add(-time.Duration(h) * time.Hour)
			rep, err := cl.Usage(ctx, client.UsageOptions{Tenant: id, From: from, To: from.Add(time.Hour)})
			if err != nil {
				return "", nil, err
			}
			var u tenant.Usage
			var cost float64
			if len(rep.Tenants) > 0 {
				u, cost = rep.Tenants[0].Usage, rep.Tenants[0].Cost.Total
			}
			d.Hours = append(d.Hours, from)
			d.Completed = append(d.Completed, float64(u.TasksCompleted))
			d.Failed = append(d.Failed, float64(u.TasksFailed))
			d.CPU = append(d.CPU, u.CPUSeconds)
			d.Cost = append(d.Cost, cost)
			d.TotalCost += cost
		}
	}
	if d.CanKeys {
		keys, err := cl.ListAPIKeys(ctx, id)
		if err != nil {
			d.KeysErr = err.Error()
		}
		d.Keys = keys
	}
	v := c.newView(ctx, r, s, "Tenant "+id)
	v.Data = d
	return "tenant", v, nil
}

// ----------------------------------------------------------------- cluster

type clusterData struct {
	Info    *membership.ClusterInfo
	Servers []nodeRow
	Workers []nodeRow
	Ready   string
}

type nodeRow struct {
	membership.NodeInfo
	// TEE is the node's grey.platform label ("" = none).
	TEE    string
	Labels []string
}

func (c *Console) clusterPage(ctx context.Context, r *http.Request, s *session) (string, any, error) {
	cl := c.client(s)
	info, err := cl.Cluster(ctx)
	if err != nil {
		return "", nil, err
	}
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return "", nil, err
	}
	d := &clusterData{Info: info, Ready: "ready"}
	if rd, err := cl.Readiness(ctx); err != nil {
		d.Ready = "not ready: " + err.Error()
	} else if rd != nil && rd.Status != "" {
		d.Ready = rd.Status
	}
	for _, n := range nodes {
		row := nodeRow{NodeInfo: n, TEE: n.Labels[task.PlatformLabel]}
		for k, v := range n.Labels {
			row.Labels = append(row.Labels, k+"="+v)
		}
		slices.Sort(row.Labels)
		if n.Role == membership.RoleWorker {
			d.Workers = append(d.Workers, row)
		} else {
			d.Servers = append(d.Servers, row)
		}
	}
	v := c.newView(ctx, r, s, "Cluster")
	v.Data = d
	return "cluster", v, nil
}

// isRedirect unwraps a page builder's redirect.
func isRedirect(err error) (string, bool) {
	var rd redirect
	if errors.As(err, &rd) {
		return string(rd), true
	}
	return "", false
}
