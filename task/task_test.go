package task_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func TestCanTransition(t *testing.T) {
	allowed := map[task.Status][]task.Status{
		task.Pending:  {task.Leased, task.Failed, task.Cancelled},
		task.Leased:   {task.Running, task.Retrying, task.Failed, task.Cancelled},
		task.Running:  {task.Completed, task.Retrying, task.Failed, task.Cancelled},
		task.Retrying: {task.Leased, task.Failed, task.Cancelled},
		// Terminal statuses go nowhere.
		task.Completed: nil,
		task.Failed:    nil,
		task.Cancelled: nil,
	}
	for _, from := range task.Statuses {
		want := map[task.Status]bool{}
		for _, to := range allowed[from] {
			want[to] = true
		}
		for _, to := range task.Statuses {
			if got := task.CanTransition(from, to); got != want[to] {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want[to])
			}
		}
		if task.CanTransition(from, "bogus") || task.CanTransition("bogus", from) {
			t.Errorf("CanTransition accepts an unknown status with %s", from)
		}
	}
	if len(allowed) != len(task.Statuses) {
		t.Errorf("the table covers %d statuses, task.Statuses has %d", len(allowed), len(task.Statuses))
	}
}

func TestStatusPredicates(t *testing.T) {
	for _, tc := range []struct {
		s                       task.Status
		valid, terminal, active bool
	}{
		{task.Pending, true, false, false},
		{task.Leased, true, false, true},
		{task.Running, true, false, true},
		{task.Retrying, true, false, false},
		{task.Completed, true, true, false},
		{task.Failed, true, true, false},
		{task.Cancelled, true, true, false},
		{"", false, false, false},
		{"COMPLETED", false, false, false},
	} {
		if got := tc.s.Valid(); got != tc.valid {
			t.Errorf("%q.Valid() = %v", tc.s, got)
		}
		if got := tc.s.Terminal(); got != tc.terminal {
			t.Errorf("%q.Terminal() = %v", tc.s, got)
		}
		if got := tc.s.Active(); got != tc.active {
			t.Errorf("%q.Active() = %v", tc.s, got)
		}
		// A terminal status has no way out, and only valid statuses have one.
		for _, to := range task.Statuses {
			if task.CanTransition(tc.s, to) && (tc.s.Terminal() || !tc.s.Valid()) {
				t.Errorf("%s → %s allowed from a terminal or unknown status", tc.s, to)
			}
		}
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestRetryPolicyCap(t *testing.T) {
	p := task.RetryPolicy{BaseDelay: task.Duration(ms(100)), MaxDelay: task.Duration(ms(1000))}
	want := []time.Duration{ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000), ms(1000)}
	for i, w := range want {
		if got := p.Cap(i + 1); got != w {
			t.Errorf("Cap(%d) = %s, want %s", i+1, got, w)
		}
	}
	for _, n := range []int{20, 64, 65, 1000, 1 << 30} {
		if got := p.Cap(n); got != ms(1000) {
			t.Errorf("Cap(%d) = %s, want the max 1s", n, got)
		}
	}
	if got := p.Cap(0); got != 0 {
		t.Errorf("Cap(0) = %s, want 0 (no retry yet)", got)
	}

	// The package defaults: 100ms doubling up to 30s.
	d := task.DefaultRetryPolicy()
	c := ms(100)
	for n := 1; n <= 12; n++ {
		if got := d.Cap(n); got != c {
			t.Errorf("default Cap(%d) = %s, want %s", n, got, c)
		}
		c = min(2*c, 30*time.Second)
	}
	if got := d.Cap(100); got != 30*time.Second {
		t.Errorf("default Cap(100) = %s, want 30s", got)
	}

	// A max that is not a power-of-two multiple of the base is still hit
	// exactly, never exceeded.
	odd := task.RetryPolicy{BaseDelay: task.Duration(ms(300)), MaxDelay: task.Duration(ms(1000))}
	for n, w := range map[int]time.Duration{1: ms(300), 2: ms(600), 3: ms(1000), 4: ms(1000)} {
		if got := odd.Cap(n); got != w {
			t.Errorf("base 300ms max 1s: Cap(%d) = %s, want %s", n, got, w)
		}
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := task.RetryPolicy{BaseDelay: task.Duration(ms(100)), MaxDelay: task.Duration(ms(1000))}
	for n := 1; n <= 8; n++ {
		c := p.Cap(n)
		var lo, hi time.Duration = c, 0
		for range 2000 {
			d := p.Delay(n, r)
			if d < 0 || d > c {
				t.Fatalf("Delay(%d) = %s, outside [0, %s]", n, d, c)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// Full jitter: the draws spread over the whole range.
		if lo > c/10 || hi < c*9/10 {
			t.Errorf("Delay(%d) draws span [%s, %s], want most of [0, %s]", n, lo, hi, c)
		}
	}
	zero := task.RetryPolicy{}
	if d := zero.Delay(3, r); d != 0 {
		t.Errorf("zero policy Delay = %s, want 0", d)
	}
	// Same seed, same delays: the leader's choice is reproducible.
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for n := 1; n <= 5; n++ {
		if x, y := p.Delay(n, a), p.Delay(n, b); x != y {
			t.Errorf("Delay(%d) with equal seeds: %s != %s", n, x, y)
		}
	}
}

func TestRetryPolicyMergeAndValidate(t *testing.T) {
	three := 3
	p := task.RetryPolicy{MaxRetries: &three}.Merge(task.DefaultRetryPolicy())
	if p.Retries() != 3 || p.BaseDelay.D() != task.DefaultBaseDelay || p.MaxDelay.D() != task.DefaultMaxDelay {
		t.Errorf("Merge = %s, want retries=3 and the default delays", p)
	}
	if got := (task.RetryPolicy{}).Retries(); got != 0 {
		t.Errorf("unset Retries() = %d, want 0", got)
	}
	if err := task.DefaultRetryPolicy().Validate("retry"); err != nil {
		t.Errorf("default policy invalid: %v", err)
	}
	neg, big := -1, 1001
	for _, tc := range []struct {
		p     task.RetryPolicy
		field string
	}{
		{task.RetryPolicy{MaxRetries: &neg}, "retry.max_retries"},
		{task.RetryPolicy{MaxRetries: &big}, "retry.max_retries"},
		{task.RetryPolicy{BaseDelay: task.Duration(-ms(1))}, "retry.base_delay"},
		{task.RetryPolicy{MaxDelay: task.Duration(-ms(1))}, "retry.max_delay"},
		{task.RetryPolicy{BaseDelay: task.Duration(ms(2000)), MaxDelay: task.Duration(ms(1000))}, "retry.base_delay"},
	} {
		err := tc.p.Validate("retry")
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != tc.field {
			t.Errorf("%s: Validate = %v, want InvalidArgument on field %s", tc.p, err, tc.field)
		}
	}
}

// valid returns a minimal valid spec.
func valid() task.Spec { return task.Spec{Kind: "noop"} }

func TestValidateDefaults(t *testing.T) {
	lim := task.Limits{MaxPayloadBytes: 1 << 20}
	id, err := task.NewID()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec task.Spec
		want task.Type
	}{
		{"bare", task.Spec{Kind: "noop"}, task.Stateless},
		{"state key", task.Spec{Kind: "noop", StateKey: "acct-1"}, task.Stateful},
		{"depends on", task.Spec{Kind: "noop", DependsOn: []string{id}}, task.Pipeline},
		{"explicit stateless", task.Spec{Kind: "noop", Type: task.Stateless}, task.Stateless},
		{"explicit pipeline", task.Spec{Kind: "noop", Type: task.Pipeline, DependsOn: []string{id}}, task.Pipeline},
		// A state key wins over parents when both are given.
		{"state key and parents", task.Spec{Kind: "noop", StateKey: "k", DependsOn: []string{id}}, task.Stateful},
	} {
		sp := tc.spec
		if err := sp.Validate("", lim); err != nil {
			t.Errorf("%s: Validate: %v", tc.name, err)
			continue
		}
		if sp.Type != tc.want {
			t.Errorf("%s: type %q, want %q", tc.name, sp.Type, tc.want)
		}
		if sp.Prio() != task.DefaultPriority {
			t.Errorf("%s: priority %d, want the default %d", tc.name, sp.Prio(), task.DefaultPriority)
		}
	}

	for _, p := range []int{task.MinPriority, 7, task.MaxPriority} {
		sp := valid()
		sp.Priority = &p
		if err := sp.Validate("", lim); err != nil || sp.Prio() != p {
			t.Errorf("priority %d: Validate %v, Prio %d", p, err, sp.Prio())
		}
	}

	// A JSON null payload is no payload.
	sp := valid()
	sp.Payload = json.RawMessage(" null ")
	if err := sp.Validate("", lim); err != nil || sp.Payload != nil {
		t.Errorf("null payload: Validate %v, payload %q", err, sp.Payload)
	}
	// Validate is idempotent.
	sp = task.Spec{Kind: "noop", StateKey: "k"}
	if err := sp.Validate("", lim); err != nil {
		t.Fatal(err)
	}
	before := sp
	if err := sp.Validate("", lim); err != nil || sp.Type != before.Type {
		t.Errorf("second Validate: %v, type %q", err, sp.Type)
	}
}

func TestValidateRejects(t *testing.T) {
	lim := task.Limits{MaxPayloadBytes: 64, MaxDependsOn: 2, MaxTimeout: task.Duration(time.Hour)}
	id1, _ := task.NewID()
	id2, _ := task.NewID()
	id3, _ := task.NewID()
	p := func(n int) *int { return &n }
	many := map[string]string{}
	for i := range 65 {
		many[strings.Repeat("h", i+1)] = "v"
	}
	for _, tc := range []struct {
		name  string
		spec  task.Spec
		field string
		code  greyerr.Code
	}{
		{"no kind", task.Spec{}, "kind", greyerr.InvalidArgument},
		{"upper-case kind", task.Spec{Kind: "Noop"}, "kind", greyerr.InvalidArgument},
		{"kind with newline", task.Spec{Kind: "noop\n"}, "kind", greyerr.InvalidArgument},
		{"long kind", task.Spec{Kind: strings.Repeat("a", 64)}, "kind", greyerr.InvalidArgument},
		{"priority -1", task.Spec{Kind: "noop", Priority: p(-1)}, "priority", greyerr.InvalidArgument},
		{"priority 11", task.Spec{Kind: "noop", Priority: p(11)}, "priority", greyerr.InvalidArgument},
		{"huge priority", task.Spec{Kind: "noop", Priority: p(1 << 40)}, "priority", greyerr.InvalidArgument},
		{"payload too large", task.Spec{Kind: "noop", Payload: json.RawMessage(`"` + strings.Repeat("x", 70) + `"`)}, "payload", greyerr.TooLarge},
		{"payload not JSON", task.Spec{Kind: "noop", Payload: json.RawMessage(`{`)}, "payload", greyerr.InvalidArgument},
		{"idempotency key with space", task.Spec{Kind: "noop", IdempotencyKey: "a b"}, "idempotency_key", greyerr.InvalidArgument},
		{"long idempotency key", task.Spec{Kind: "noop", IdempotencyKey: strings.Repeat("k", 201)}, "idempotency_key", greyerr.InvalidArgument},
		{"stateful without key", task.Spec{Kind: "noop", Type: task.Stateful}, "state_key", greyerr.InvalidArgument},
		{"state key on stateless", task.Spec{Kind: "noop", Type: task.Stateless, StateKey: "k"}, "state_key", greyerr.InvalidArgument},
		{"pipeline without parents", task.Spec{Kind: "noop", Type: task.Pipeline}, "depends_on", greyerr.InvalidArgument},
		{"unknown type", task.Spec{Kind: "noop", Type: "batch"}, "type", greyerr.InvalidArgument},
		{"too many parents", task.Spec{Kind: "noop", DependsOn: []string{id1, id2, id3}}, "depends_on", greyerr.InvalidArgument},
		{"bad parent id", task.Spec{Kind: "noop", DependsOn: []string{"nope"}}, "depends_on", greyerr.InvalidArgument},
		{"parent twice", task.Spec{Kind: "noop", DependsOn: []string{id1, id1}}, "depends_on", greyerr.InvalidArgument},
		{"negative timeout", task.Spec{Kind: "noop", Timeout: task.Duration(-time.Second)}, "timeout", greyerr.InvalidArgument},
		{"timeout over the limit", task.Spec{Kind: "noop", Timeout: task.Duration(2 * time.Hour)}, "timeout", greyerr.InvalidArgument},
		{"bad retry", task.Spec{Kind: "noop", Retry: &task.RetryPolicy{MaxRetries: p(-1)}}, "retry.max_retries", greyerr.InvalidArgument},
		{"negative cpu", task.Spec{Kind: "noop", Constraints: &task.Constraints{CPU: -1}}, "constraints.cpu", greyerr.InvalidArgument},
		{"negative gpu", task.Spec{Kind: "noop", Constraints: &task.Constraints{GPU: -1}}, "constraints.gpu", greyerr.InvalidArgument},
		{"too many gpus", task.Spec{Kind: "noop", Constraints: &task.Constraints{GPU: task.MaxGPU + 1}}, "constraints.gpu", greyerr.InvalidArgument},
		{"reserved header", task.Spec{Kind: "noop", Headers: map[string]string{"grey.ai/model-digest": "sha256:00"}}, "headers", greyerr.InvalidArgument},
		{"negative memory", task.Spec{Kind: "noop", Constraints: &task.Constraints{MemoryMB: -1}}, "constraints.memory_mb", greyerr.InvalidArgument},
		{"too many headers", task.Spec{Kind: "noop", Headers: many}, "headers", greyerr.InvalidArgument},
		{"empty header name", task.Spec{Kind: "noop", Headers: map[string]string{"": "v"}}, "headers", greyerr.InvalidArgument},
		{"run_at past 9999 in UTC", task.Spec{Kind: "noop", RunAt: at("9999-12-31T23:59:59-23:00")}, "run_at", greyerr.InvalidArgument},
		{"run_at before 0000 in UTC", task.Spec{Kind: "noop", RunAt: at("0000-01-01T00:00:00+01:00")}, "run_at", greyerr.InvalidArgument},
	} {
		for _, prefix := range []string{"", "tasks[3]."} {
			sp := tc.spec
			err := sp.Validate(prefix, lim)
			var ge *greyerr.Error
			if !errors.As(err, &ge) {
				t.Errorf("%s: Validate = %v, want a *greyerr.Error", tc.name, err)
				continue
			}
			if ge.Code != tc.code || ge.Field != prefix+tc.field {
				t.Errorf("%s: Validate = %v (code %s, field %q), want code %s on field %q", tc.name, err, ge.Code, ge.Field, tc.code, prefix+tc.field)
			}
		}
	}
}

// at parses an RFC 3339 time the way encoding/json does.
func at(s string) *time.Time {
	var v time.Time
	if err := json.Unmarshal([]byte(`"`+s+`"`), &v); err != nil {
		panic(err)
	}
	return &v
}

func TestValidateRunAt(t *testing.T) {
	lim := task.Limits{MaxPayloadBytes: 1 << 20}
	for _, s := range []string{"2026-01-02T15:04:05Z", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "9999-12-31T10:00:00+01:00"} {
		sp := task.Spec{Kind: "noop", RunAt: at(s)}
		if err := sp.Validate("", lim); err != nil {
			t.Errorf("run_at %s: %v", s, err)
		}
		// What the engine does before it proposes the task.
		utc := sp.RunAt.UTC()
		sp.RunAt = &utc
		if _, err := json.Marshal(&sp); err != nil {
			t.Errorf("run_at %s: a valid spec does not marshal in UTC: %v", s, err)
		}
	}
}

func TestValidTenantAndID(t *testing.T) {
	for s, want := range map[string]bool{
		"default": true, "a": true, "team-1_x": true, "0abc": true,
		"": false, "-a": false, "A": false, "a b": false, strings.Repeat("a", 63): true, strings.Repeat("a", 64): false,
	} {
		if got := task.ValidTenant(s); got != want {
			t.Errorf("ValidTenant(%q) = %v", s, got)
		}
	}
	id, err := task.NewID()
	if err != nil || !task.ValidID(id) {
		t.Fatalf("NewID = %q, %v", id, err)
	}
	id2, _ := task.NewID()
	if id2 <= id {
		t.Errorf("ids do not sort by creation: %s then %s", id, id2)
	}
	for _, s := range []string{"", "x", strings.Repeat("0", 36), id + "0"} {
		if task.ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{`"1.5s"`, 1500 * time.Millisecond},
		{`"100ms"`, 100 * time.Millisecond},
		{`"1h30m"`, 90 * time.Minute},
		{`"0s"`, 0},
		{`"-2s"`, -2 * time.Second},
		{`250`, 250 * time.Millisecond},
		{`1.5`, 1500 * time.Microsecond},
		{`0`, 0},
		{`1e3`, time.Second},
	} {
		var d task.Duration
		if err := json.Unmarshal([]byte(tc.in), &d); err != nil {
			t.Errorf("Unmarshal(%s): %v", tc.in, err)
			continue
		}
		if d.D() != tc.want {
			t.Errorf("Unmarshal(%s) = %s, want %s", tc.in, d.D(), tc.want)
		}
	}
	for _, in := range []string{`"abc"`, `"1.5"`, `""`, `true`, `{}`, `[]`, `"1s`, `1e400`, `1e300`, `-1e300`, `9.3e12`} {
		var d task.Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %s, want an error", in, d.D())
		}
	}
	var d task.Duration
	err := json.Unmarshal([]byte(`"abc"`), &d)
	if err == nil || !strings.Contains(err.Error(), `"abc"`) {
		t.Errorf("bad string error %v does not quote the input", err)
	}

	// Marshal writes a Go duration string, which reads back exactly.
	for _, v := range []time.Duration{0, 1, 1500 * time.Millisecond, -time.Second, 90 * time.Minute, 1<<63 - 1, -1 << 63} {
		b, err := json.Marshal(task.Duration(v))
		if err != nil {
			t.Fatalf("Marshal(%s): %v", v, err)
		}
		if want := `"` + v.String() + `"`; string(b) != want {
			t.Errorf("Marshal(%d) = %s, want %s", v, b, want)
		}
		var back task.Duration
		if err := json.Unmarshal(b, &back); err != nil || back.D() != v {
			t.Errorf("round trip of %s: %s, %v", v, back.D(), err)
		}
	}

	// In a spec: omitted when zero, a string otherwise.
	b, err := json.Marshal(task.Spec{Kind: "noop", Timeout: task.Duration(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timeout":"1.5s"`) {
		t.Errorf("spec JSON %s lacks \"timeout\":\"1.5s\"", b)
	}
	b, _ = json.Marshal(task.Spec{Kind: "noop"})
	if strings.Contains(string(b), "timeout") {
		t.Errorf("spec JSON %s has a zero timeout", b)
	}
	var sp task.Spec
	if err := json.Unmarshal([]byte(`{"kind":"noop","timeout":2000,"retry":{"base_delay":"50ms","max_delay":1000}}`), &sp); err != nil {
		t.Fatal(err)
	}
	if sp.Timeout.D() != 2*time.Second || sp.Retry.BaseDelay.D() != ms(50) || sp.Retry.MaxDelay.D() != time.Second {
		t.Errorf("spec durations: timeout %s, base %s, max %s", sp.Timeout.D(), sp.Retry.BaseDelay.D(), sp.Retry.MaxDelay.D())
	}
}

func TestConstraintsAndClone(t *testing.T) {
	c := task.Constraints{Labels: map[string]string{"gpu": "true"}}
	if !c.Satisfied(map[string]string{"gpu": "true", "zone": "a"}) || c.Satisfied(map[string]string{"gpu": "false"}) || c.Satisfied(nil) {
		t.Error("Satisfied gets labels wrong")
	}
	if !(task.Constraints{}).Satisfied(nil) {
		t.Error("no constraints should be satisfied by any worker")
	}
	var sp task.Spec
	if sp.Labels() != nil {
		t.Error("Labels() of a spec without constraints is not nil")
	}

	orig := &task.Task{
		ID:       "x",
		Lease:    &task.Lease{WorkerID: "w", Attempt: 1},
		Error:    &task.Error{Message: "m"},
		Attempts: []task.Attempt{{N: 1}},
	}
	cp := orig.Clone()
	cp.Lease.WorkerID = "other"
	cp.Error.Message = "changed"
	cp.Attempts[0].N = 9
	if orig.Lease.WorkerID != "w" || orig.Error.Message != "m" || orig.Attempts[0].N != 1 {
		t.Errorf("Clone shares memory with the original: %+v", orig)
	}
}

// GPU is constraints.gpu when set, one for a gpu=true label alone, else 0.
func TestSpecGPU(t *testing.T) {
	for _, c := range []struct {
		c    *task.Constraints
		want float64
	}{
		{nil, 0},
		{&task.Constraints{}, 0},
		{&task.Constraints{GPU: 0.5}, 0.5},
		{&task.Constraints{Labels: map[string]string{"gpu": "true"}}, 1},
		{&task.Constraints{Labels: map[string]string{"gpu": "true"}, GPU: 4}, 4},
		{&task.Constraints{Labels: map[string]string{"gpu": "false"}}, 0},
	} {
		s := task.Spec{Kind: "noop", Constraints: c.c}
		if got := s.GPU(); got != c.want {
			t.Errorf("GPU(%+v) = %v, want %v", c.c, got, c.want)
		}
	}
}

// TestDurationMarshalMatchesString keeps Duration's hand-written encoding
// byte-equal to encoding/json's encoding of the duration string.
func TestDurationMarshalMatchesString(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 999, 1500 * time.Microsecond, 1500 * time.Millisecond, -3 * time.Second, 90 * time.Minute, 1<<63 - 1, -1 << 63} {
		got, err := task.Duration(d).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(d.String())
		if string(got) != string(want) {
			t.Fatalf("%d: got %s, want %s", int64(d), got, want)
		}
	}
}
