package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/taskdata"
)

// TestGeneratedRequests holds the server to openapi.yaml with requests
// generated from the spec itself: for every operation, requests built from
// its parameter and body schemas (values drawn from the schemas and from a
// pool of realistic values: existing task ids, tenants, kinds, short
// durations), half of them then broken in one place (a required property
// dropped, an unknown one added, a wrong type, a null, a value out of
// range, an empty or malformed parameter). The spec's validator says
// whether each request is valid. The test fails on
//
//   - any 5xx;
//   - any response that does not match the operation's schema, or whose
//     status the operation does not list (the `default` response does not
//     count);
//   - any 2xx to a request the spec calls invalid;
//
// and, for every path, on an undeclared method not answered 405 with the
// spec's methods in Allow.
//
// The seed is fixed in CI (GREY_PROPTEST_SEED overrides it anywhere; a
// failure prints the seed); GREY_PROPTEST_N sets requests per operation.
func TestGeneratedRequests(t *testing.T) {
	t.Parallel()
	seed := uint64(20261204)
	if v := os.Getenv("GREY_PROPTEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("GREY_PROPTEST_SEED=%q: %v", v, err)
		}
		seed = n
	} else if !testenv.InCI() {
		seed = uint64(time.Now().UnixNano())
	}
	perOp := 40
	if v := os.Getenv("GREY_PROPTEST_N"); v != "" {
		perOp, _ = strconv.Atoi(v)
	}
	t.Logf("seed %d (GREY_PROPTEST_SEED=%d reproduces this run), %d requests per operation", seed, seed, perOp)

	b, err := memblob.Open(blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := modules.New(b, modules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := taskdata.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	data, err := taskdata.New(b, taskdata.Options{MaxObjectBytes: 1 << 20, InlineMax: 1 << 16, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	models, err := modelstore.New(b, modelstore.Options{MaxBytes: 1 << 20, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, engine.Config{Data: data, Kinds: []string{"manual"}}, api.Options{Modules: mods, TaskData: data, ModelRegistry: models})
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec())
	if err != nil {
		t.Fatal(err)
	}

	// Realistic values: tasks of two tenants in several states.
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for _, ten := range []string{"acme", "globex"} {
		for _, kind := range []string{"noop", "echo", "manual"} {
			g.taskIDs = append(g.taskIDs, e.submit(t, ten, map[string]any{"kind": kind, "payload": map[string]any{"n": 1}}).ID)
		}
	}
	g.taskIDs = append(g.taskIDs, zeroID)

	type opRef struct {
		path, method string
		op           *openapi3.Operation
		item         *openapi3.PathItem
	}
	var ops []opRef
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, p := range paths {
		item := doc.Paths.Value(p)
		methods := make([]string, 0, 4)
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			ops = append(ops, opRef{p, m, item.GetOperation(m), item})
		}
	}
	for _, o := range ops {
		t.Run(o.op.OperationID, func(t *testing.T) {
			valid, refused := 0, 0
			for i := range perOp {
				req := g.request(t, e.url, o.path, o.method, o.item, o.op, i%2 == 1)
				specErr := e.v.ValidateRequest(req.http, req.body)
				status, header, body := send(t, e, req)
				what := fmt.Sprintf("%s %s (seed %d, request %d)\n  body: %.400s\n  response %d: %.600s", o.method, req.http.URL.RequestURI(), seed, i, req.body, status, body)
				if status >= 500 {
					t.Fatalf("5xx: %s", what)
				}
				if specErr != nil {
					refused++
					if status < 300 {
						t.Fatalf("the spec calls the request invalid (%v) but the server accepted it: %s", briefErr(specErr), what)
					}
				} else {
					valid++
				}
				if !declared(o.op, status) {
					t.Fatalf("status %d is not declared by %s: %s", status, o.op.OperationID, what)
				}
				if strings.HasPrefix(header.Get("Content-Type"), "text/event-stream") {
					continue // the watch stream: status and type only
				}
				if err := e.v.ValidateResponse(req.http, status, header, body); err != nil {
					t.Fatalf("response does not match the spec: %v\n%s", briefErr(err), what)
				}
			}
			t.Logf("%d requests valid per the spec, %d invalid (all refused)", valid, refused)
		})
	}

	// Undeclared methods on every known path: 405 and Allow.
	t.Run("undeclared methods", func(t *testing.T) {
		for _, p := range paths {
			item := doc.Paths.Value(p)
			path := g.fillPath(p, item, nil)
			// The methods of every spec path this URL instantiates
			// (/tasks/batch is also a /tasks/{id}).
			inSpec := func(m string) bool {
				return e.v.ValidateRequest(httptestRequest(m, e.url+path), nil) == nil ||
					!strings.Contains(fmt.Sprint(e.v.ValidateRequest(httptestRequest(m, e.url+path), nil)), "is not in the API spec")
			}
			var want []string
			for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
				if inSpec(m) || m == "HEAD" && inSpec("GET") {
					want = append(want, m)
				}
			}
			for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
				if slices.Contains(want, m) {
					continue
				}
				req, _ := http.NewRequestWithContext(t.Context(), m, e.url+path, nil)
				resp, err := e.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != strings.Join(want, ", ") {
					t.Errorf("%s %s = %d, Allow %q; want 405 with Allow %q (%s)", m, path, resp.StatusCode, resp.Header.Get("Allow"), strings.Join(want, ", "), b)
				}
			}
		}
	})
}

// declared reports whether op lists status explicitly (2XX-style ranges
// included; the default response does not count).
func declared(op *openapi3.Operation, status int) bool {
	if op.Responses.Value(strconv.Itoa(status)) != nil {
		return true
	}
	return op.Responses.Value(fmt.Sprintf("%dXX", status/100)) != nil
}

func briefErr(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// genRequest is one generated request.
type genRequest struct {
	http *http.Request
	body []byte
}

// send sends req; streams are cut after their headers.
func send(t *testing.T, e *env, req genRequest) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r := req.http.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(req.body))
	r.ContentLength = int64(len(req.body))
	resp, err := e.hc.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, resp.Header, nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", r.Method, r.URL, err)
	}
	return resp.StatusCode, resp.Header, b
}

// gen draws values from schemas.
type gen struct {
	r       *rand.Rand
	taskIDs []string
}

func (g *gen) pick(vs ...string) string { return vs[g.r.IntN(len(vs))] }

// pool are candidate strings for string schemas: the first that the schema
// accepts (in a random order) is used.
func (g *gen) pool() []string {
	now := time.Now().UTC()
	out := []string{
		"acme", "globex", "default", "noop", "echo", "sleep", "fail", "manual",
		"0s", "1ms", "10ms", "100ms", "1s",
		now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Second).Format(time.RFC3339Nano),
		"sha256:" + strings.Repeat("ab", 32), strings.Repeat("0f", 32),
		"uploads/x", "results/" + g.taskIDs[0], "w1", "k-1", "order-7", "state-1",
		"operator", "viewer", "worker", "admin", "server", "pending", "completed",
		"http://127.0.0.1:1/x", "1h", "true", "x", "Some Text", "*",
	}
	out = append(out, g.taskIDs...)
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// value draws a value valid for s (as far as the pool allows).
func (g *gen) value(s *openapi3.Schema, name string, depth int) any {
	if s == nil {
		return nil
	}
	if len(s.Enum) > 0 {
		return s.Enum[g.r.IntN(len(s.Enum))]
	}
	if len(s.AllOf) > 0 && (s.Type == nil || len(s.Type.Slice()) == 0) && len(s.Properties) == 0 {
		return g.value(s.AllOf[0].Value, name, depth)
	}
	if len(s.OneOf) > 0 && len(s.Properties) == 0 {
		return g.value(s.OneOf[g.r.IntN(len(s.OneOf))].Value, name, depth)
	}
	typ := ""
	if s.Type != nil && len(s.Type.Slice()) > 0 {
		typ = s.Type.Slice()[0]
	}
	switch {
	case typ == "object" || len(s.Properties) > 0:
		obj := map[string]any{}
		for _, k := range sortedKeys(s.Properties) {
			if depth > 4 {
				break
			}
			if slices.Contains(s.Required, k) || g.r.IntN(3) == 0 {
				obj[k] = g.value(s.Properties[k].Value, k, depth+1)
			}
		}
		if ap := s.AdditionalProperties.Schema; ap != nil && len(s.Properties) == 0 && depth < 4 {
			for i := range g.r.IntN(3) {
				obj[g.pick("gpu", "zone", "traceparent", "k")+strconv.Itoa(i)] = g.value(ap.Value, "", depth+1)
			}
		}
		return obj
	case typ == "array":
		n := int(s.MinItems) + g.r.IntN(3)
		if s.MaxItems != nil && uint64(n) > *s.MaxItems {
			n = int(*s.MaxItems)
		}
		arr := make([]any, 0, n)
		for range n {
			v := g.value(s.Items.Value, name, depth+1)
			if s.UniqueItems && slices.ContainsFunc(arr, func(x any) bool { return fmt.Sprint(x) == fmt.Sprint(v) }) {
				continue
			}
			arr = append(arr, v)
		}
		return arr
	case typ == "string":
		if s.Format == "byte" {
			return "AAAA"
		}
		for _, c := range g.pool() {
			if s.VisitJSON(c) == nil {
				return c
			}
		}
		return "x"
	case typ == "integer" || typ == "number":
		lo, hi := 0.0, 10.0
		if s.Min != nil {
			lo = *s.Min
		}
		if s.Max != nil && *s.Max < lo+10 {
			hi = *s.Max - lo
		}
		v := lo + float64(g.r.IntN(int(hi)+1))
		if typ == "number" && g.r.IntN(2) == 0 {
			v += 0.5
			if s.Max != nil && v > *s.Max {
				v = *s.Max
			}
		}
		return v
	case typ == "boolean":
		return g.r.IntN(2) == 0
	}
	// Any JSON value (payload, result).
	return []any{nil, 1.0, "hi", map[string]any{"ms": 1.0}, []any{1.0, "a"}}[g.r.IntN(5)]
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// params returns the operation's parameters, the path item's included.
func params(item *openapi3.PathItem, op *openapi3.Operation) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	for _, ps := range []openapi3.Parameters{item.Parameters, op.Parameters} {
		for _, p := range ps {
			out = append(out, p.Value)
		}
	}
	return out
}

// fillPath puts generated values into path's parameters; bad names one
// parameter to give a malformed value instead.
func (g *gen) fillPath(path string, item *openapi3.PathItem, op *openapi3.Operation, bad ...string) string {
	var ps []*openapi3.Parameter
	if op != nil {
		ps = params(item, op)
	} else {
		for _, o := range item.Operations() {
			ps = params(item, o)
			break
		}
	}
	for _, p := range ps {
		if p.In != "path" {
			continue
		}
		var v string
		switch {
		case slices.Contains(bad, p.Name):
			v = g.pick("not an id", "-", "ÄÖ", strings.Repeat("z", 300))
		case p.Name == "key":
			// Object keys hold slashes, which the spec's router cannot
			// match in one parameter: one-segment keys only.
			v = g.pick("x", "results", "uploads")
		case p.Name == "tenant":
			v = g.pick("acme", "globex")
		case strings.HasPrefix(path, "/api/v1/tasks/") && p.Name == "id":
			v = g.taskIDs[g.r.IntN(len(g.taskIDs))]
		case strings.HasPrefix(path, "/api/v1/cluster/nodes/"):
			v = g.pick("w1", "gone-node") // never this node: removing it would end the test's cluster
		default:
			v = fmt.Sprint(g.value(p.Schema.Value, p.Name, 0))
		}
		path = strings.Replace(path, "{"+p.Name+"}", url.PathEscape(v), 1)
	}
	return path
}

// request builds one request for an operation; broken requests are
// changed in one place after generation.
func (g *gen) request(t *testing.T, base, path, method string, item *openapi3.PathItem, op *openapi3.Operation, broken bool) genRequest {
	t.Helper()
	u := g.fillPath(path, item, op)
	q := []string{}
	header := http.Header{}
	header.Set(api.TenantHeader, g.pick("acme", "globex"))
	for _, p := range params(item, op) {
		switch p.In {
		case "query":
			// wait's timeout is always short: its default holds 30s.
			if p.Required || g.r.IntN(2) == 0 || op.OperationID == "waitTask" && p.Name == "timeout" {
				v := g.value(p.Schema.Value, p.Name, 0)
				if arr, ok := v.([]any); ok {
					parts := make([]string, len(arr))
					for i, x := range arr {
						parts[i] = fmt.Sprint(x)
					}
					v = strings.Join(parts, ",")
					if len(arr) == 0 {
						continue
					}
				}
				q = append(q, p.Name+"="+url.QueryEscape(fmt.Sprint(v)))
			}
		case "header":
			if p.Name != api.TenantHeader {
				header.Set(p.Name, fmt.Sprint(g.value(p.Schema.Value, p.Name, 0)))
			}
		}
	}
	var body []byte
	var bodyValue any
	if op.RequestBody != nil {
		rb := op.RequestBody.Value
		if mt := rb.Content.Get("application/json"); mt != nil {
			bodyValue = g.value(mt.Schema.Value, "", 0)
			if op.OperationID == "joinCluster" {
				// A generated server join would add an unreachable voter
				// and end the test cluster's quorum: workers only.
				bodyValue.(map[string]any)["role"] = "worker"
			}
			header.Set("Content-Type", "application/json")
		} else {
			for ct := range rb.Content {
				header.Set("Content-Type", ct)
				body = []byte("\x00asm generated bytes")
				break
			}
		}
	}
	if broken {
		switch n := g.r.IntN(4); {
		case n == 0 && len(q) > 0:
			i := g.r.IntN(len(q))
			name, _, _ := strings.Cut(q[i], "=")
			q[i] = name + "=" + url.QueryEscape(g.pick("", "!!", "-1", "not a value"))
		case n == 1 && strings.Contains(path, "{"):
			name := path[strings.LastIndexByte(path, '{')+1 : strings.LastIndexByte(path, '}')]
			u = g.fillPath(path, item, op, name)
		default:
			if m, ok := bodyValue.(map[string]any); ok {
				g.breakObject(m)
			} else if bodyValue != nil {
				bodyValue = []any{bodyValue}
			} else if len(q) > 0 {
				q = append(q, q[0][:strings.IndexByte(q[0], '=')+1])
			}
		}
	}
	if bodyValue != nil {
		var err error
		if body, err = json.Marshal(bodyValue); err != nil {
			t.Fatal(err)
		}
	}
	full := base + u
	if len(q) > 0 {
		full += "?" + strings.Join(q, "&")
	}
	req, err := http.NewRequest(method, full, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	return genRequest{http: req, body: body}
}

// breakObject changes one thing in m (recursing into a nested object at
// random).
func (g *gen) breakObject(m map[string]any) {
	keys := sortedKeys(m)
	if len(keys) > 0 && g.r.IntN(3) == 0 {
		if sub, ok := m[keys[g.r.IntN(len(keys))]].(map[string]any); ok {
			g.breakObject(sub)
			return
		}
	}
	switch g.r.IntN(5) {
	case 0:
		m["bogus_field"] = 1
	case 1:
		if len(keys) > 0 {
			delete(m, keys[g.r.IntN(len(keys))])
		} else {
			m["x"] = true
		}
	case 2:
		if len(keys) > 0 {
			m[keys[g.r.IntN(len(keys))]] = nil
		}
	case 3:
		if len(keys) > 0 {
			k := keys[g.r.IntN(len(keys))]
			switch m[k].(type) {
			case string:
				m[k] = 12.0
			default:
				m[k] = "Not Valid!"
			}
		}
	default:
		if len(keys) > 0 {
			k := keys[g.r.IntN(len(keys))]
			if _, ok := m[k].(float64); ok {
				m[k] = 1e12
			} else {
				m[k] = []any{}
			}
		}
	}
}

var _ = task.Pending

func httptestRequest(method, u string) *http.Request {
	r, _ := http.NewRequest(method, u, nil)
	return r
}
