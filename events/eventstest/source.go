package eventstest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// RunSource runs the source side of the suite.
func RunSource(t *testing.T, h SourceHarness) {
	if h.Open == nil || h.Produce == nil || h.DeadLetters == nil {
		t.Fatal("eventstest: SourceHarness needs Open, Produce and DeadLetters")
	}
	t.Run("Delivery", func(t *testing.T) { testDelivery(t, h) })
	t.Run("TenantFromSourceOnly", func(t *testing.T) { testTenantFromSource(t, h) })
	t.Run("RedeliveryAfterCloseKeepsPositions", func(t *testing.T) { testRedelivery(t, h) })
	t.Run("AckedNotRedelivered", func(t *testing.T) { testAcked(t, h) })
	t.Run("RetryRedelivers", func(t *testing.T) { testRetry(t, h) })
	t.Run("PauseResumePerTenant", func(t *testing.T) { testPause(t, h) })
	t.Run("DeadLetterWithReason", func(t *testing.T) { testDeadLetter(t, h) })
	t.Run("ContextCancelled", func(t *testing.T) { testFetchCancel(t, h) })
	t.Run("Lag", func(t *testing.T) { testLag(t, h) })
	t.Run("Unreachable", func(t *testing.T) { testSourceUnreachable(t, h) })
}

// source is an opened driver, closed once (explicitly or at cleanup).
type source struct {
	events.SourceDriver
	once sync.Once
	t    testing.TB
}

func (s *source) close() {
	s.once.Do(func() {
		if err := s.SourceDriver.Close(); err != nil {
			s.t.Errorf("Close: %v", err)
		}
	})
}

func openSource(t testing.TB, h SourceHarness, tenants ...string) *source {
	t.Helper()
	d := h.Open(t, tenants)
	if d == nil {
		t.Fatal("eventstest: the harness returned a nil source driver")
	}
	s := &source{SourceDriver: d, t: t}
	t.Cleanup(s.close)
	return s
}

func body(tenant string, i int) []byte {
	return fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d,"t":%q}}`, i, tenant)
}

// fetchN fetches until it holds n messages of tenants, leaving other
// tenants' messages alone.
func fetchN(t testing.TB, h SourceHarness, d events.SourceDriver, n int, tenants ...string) []*events.Message {
	t.Helper()
	want := map[string]bool{}
	for _, tn := range tenants {
		want[tn] = true
	}
	c := ctx(t, h.timeout())
	var got []*events.Message
	for len(got) < n {
		msgs, err := d.Fetch(c, n-len(got))
		if err != nil {
			t.Fatalf("Fetch: got %d of %d messages of %v, then: %v", len(got), n, tenants, err)
		}
		for _, m := range msgs {
			if m == nil {
				t.Fatal("Fetch returned a nil message")
			}
			if want[m.Tenant] {
				got = append(got, m)
			}
		}
	}
	if len(got) > n {
		t.Fatalf("Fetch(max %d) returned %d messages", n, len(got))
	}
	return got
}

// fetchNone fails if a message of tenants arrives within the quiet time.
func fetchNone(t testing.TB, h SourceHarness, d events.SourceDriver, why string, tenants ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, tn := range tenants {
		want[tn] = true
	}
	c, cancel := context.WithTimeout(context.Background(), h.quiet())
	defer cancel()
	for c.Err() == nil {
		msgs, err := d.Fetch(c, 16)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if want[m.Tenant] {
				t.Fatalf("%s: got message %s of %s: %s", why, m.Position, m.Tenant, m.Value)
			}
		}
	}
}

func positions(msgs []*events.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Position
	}
	sort.Strings(out)
	return out
}

func values(msgs []*events.Message) map[string]string {
	out := map[string]string{}
	for _, m := range msgs {
		out[m.Position] = string(m.Value)
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func testDelivery(t *testing.T, h SourceHarness) {
	a := Tenant("deliv")
	d := openSource(t, h, a)
	sent := map[string]Produced{}
	for i := range 3 {
		p := Produced{Key: fmt.Appendf(nil, "k%d", i), Value: body(a, i), Headers: map[string]string{"traceparent": traceparent, "x-grey-test": fmt.Sprint(i)}}
		h.Produce(t, a, p)
		sent[string(p.Value)] = p
	}
	avro := Produced{Value: []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ContentType: events.ContentTypeAvro}
	h.Produce(t, a, avro)
	sent[string(avro.Value)] = avro
	got := fetchN(t, h, d, 4, a)
	seen := map[string]bool{}
	for _, m := range got {
		p, ok := sent[string(m.Value)]
		if !ok {
			t.Fatalf("message %s: body %q was not sent", m.Position, m.Value)
		}
		if m.Tenant != a {
			t.Errorf("message %s: Tenant %q, want %q", m.Position, m.Tenant, a)
		}
		if m.Source == "" {
			t.Errorf("message %s: empty Source", m.Position)
		}
		if m.Position == "" || seen[m.Position] {
			t.Errorf("message position %q empty or repeated", m.Position)
		}
		seen[m.Position] = true
		for k, v := range p.Headers {
			if m.Headers[k] != v {
				t.Errorf("message %s: header %s = %q, want %q", m.Position, k, m.Headers[k], v)
			}
		}
		if p.ContentType != "" && m.ContentType != p.ContentType {
			t.Errorf("message %s: ContentType %q, want %q", m.Position, m.ContentType, p.ContentType)
		}
		if p.ContentType == "" && m.ContentType != "" && m.ContentType != events.ContentTypeJSON {
			t.Errorf("message %s without content type: ContentType %q, want empty or %s", m.Position, m.ContentType, events.ContentTypeJSON)
		}
	}
	if err := d.Ack(ctx(t, h.timeout()), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func testTenantFromSource(t *testing.T, h SourceHarness) {
	a, b := Tenant("own"), Tenant("other")
	d := openSource(t, h, a, b)
	h.Produce(t, a, Produced{Value: fmt.Appendf(nil, `{"kind":"noop","tenant_id":%q}`, b), Headers: map[string]string{events.HeaderTenant: b}})
	got := fetchN(t, h, d, 1, a, b)
	m := got[0]
	if m.Tenant != a {
		t.Fatalf("a message published to %s's source with header and body naming %s has Tenant %q: the tenant must come from where it was published", a, b, m.Tenant)
	}
	if m.Headers[events.HeaderTenant] != b {
		t.Errorf("header %s = %q, want it passed through as %q (the consumer rejects the mismatch)", events.HeaderTenant, m.Headers[events.HeaderTenant], b)
	}
	if err := d.Ack(ctx(t, h.timeout()), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func testRedelivery(t *testing.T, h SourceHarness) {
	a := Tenant("redeliv")
	d1 := openSource(t, h, a)
	for i := range 3 {
		h.Produce(t, a, Produced{Value: body(a, i)})
	}
	first := fetchN(t, h, d1, 3, a)
	d1.close() // no Ack: a crash between the submit and the ack
	d2 := openSource(t, h, a)
	again := fetchN(t, h, d2, 3, a)
	if p1, p2 := positions(first), positions(again); !sameStrings(p1, p2) {
		t.Fatalf("positions after Close without Ack: %v, first delivery %v: a position must identify a message for good", p2, p1)
	}
	v1, v2 := values(first), values(again)
	for p, v := range v1 {
		if v2[p] != v {
			t.Errorf("position %s: body %q on redelivery, %q first", p, v2[p], v)
		}
	}
	byPos := map[string]*events.Message{}
	for _, m := range first {
		byPos[m.Position] = m
	}
	for _, m := range again {
		if f := byPos[m.Position]; f != nil && f.Attempt > 0 && m.Attempt > 0 && m.Attempt <= f.Attempt {
			t.Errorf("position %s: Attempt %d on redelivery, %d first", m.Position, m.Attempt, f.Attempt)
		}
	}
	if err := d2.Ack(ctx(t, h.timeout()), again); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func testAcked(t *testing.T, h SourceHarness) {
	a := Tenant("acked")
	d1 := openSource(t, h, a)
	for i := range 3 {
		h.Produce(t, a, Produced{Value: body(a, i)})
	}
	got := fetchN(t, h, d1, 3, a)
	if err := d1.Ack(ctx(t, h.timeout()), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := d1.Ack(ctx(t, h.timeout()), got); err != nil {
		t.Fatalf("a second Ack of the same messages must be harmless: %v", err)
	}
	fetchNone(t, h, d1, "after Ack, on the same driver", a)
	d1.close()
	d2 := openSource(t, h, a)
	marker := body(a, 99)
	h.Produce(t, a, Produced{Value: marker})
	next := fetchN(t, h, d2, 1, a)
	if string(next[0].Value) != string(marker) {
		t.Fatalf("after Ack and Close, the next driver got %s (%q), want only the new message: acknowledged messages must not come again", next[0].Position, next[0].Value)
	}
	for _, p := range positions(got) {
		if p == next[0].Position {
			t.Fatalf("the new message has the position %s of an acknowledged one", p)
		}
	}
	if err := d2.Ack(ctx(t, h.timeout()), next); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	fetchNone(t, h, d2, "after every message was acknowledged", a)
}

func testRetry(t *testing.T, h SourceHarness) {
	a := Tenant("retry")
	d := openSource(t, h, a)
	for i := range 2 {
		h.Produce(t, a, Produced{Value: body(a, i)})
	}
	first := fetchN(t, h, d, 2, a)
	if err := d.Retry(ctx(t, h.timeout()), first); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	again := fetchN(t, h, d, 2, a)
	if p1, p2 := positions(first), positions(again); !sameStrings(p1, p2) {
		t.Fatalf("positions after Retry %v, first %v", p2, p1)
	}
	if err := d.Ack(ctx(t, h.timeout()), again); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func testPause(t *testing.T, h SourceHarness) {
	a, b := Tenant("paused"), Tenant("running")
	d := openSource(t, h, a, b)
	d.Pause(a)
	for i := range 2 {
		h.Produce(t, a, Produced{Value: body(a, i)})
		h.Produce(t, b, Produced{Value: body(b, i)})
	}
	gotB := fetchN(t, h, d, 2, b)
	fetchNone(t, h, d, "tenant paused", a)
	if err := d.Ack(ctx(t, h.timeout()), gotB); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	d.Resume(a)
	gotA := fetchN(t, h, d, 2, a)
	for _, m := range gotA {
		if m.Tenant != a {
			t.Fatalf("after Resume: message of %s", m.Tenant)
		}
	}
	// A quota refusal gives messages back while the tenant is paused:
	// they come after Resume.
	d.Pause(a)
	if err := d.Retry(ctx(t, h.timeout()), gotA); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	fetchNone(t, h, d, "messages given back while the tenant is paused", a)
	d.Resume(a)
	again := fetchN(t, h, d, 2, a)
	if p1, p2 := positions(gotA), positions(again); !sameStrings(p1, p2) {
		t.Fatalf("positions after Pause, Retry, Resume: %v, want %v", p2, p1)
	}
	if err := d.Ack(ctx(t, h.timeout()), again); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func testDeadLetter(t *testing.T, h SourceHarness) {
	a := Tenant("dlq")
	d := openSource(t, h, a)
	bad, good := []byte(`{"kind":`), body(a, 1)
	h.Produce(t, a, Produced{Value: bad, Headers: map[string]string{"x-grey-test": "bad"}})
	h.Produce(t, a, Produced{Value: good})
	got := fetchN(t, h, d, 2, a)
	reason := "malformed: invalid JSON task submission: unexpected end of JSON input"
	var goodMsgs []*events.Message
	for _, m := range got {
		if string(m.Value) == string(bad) {
			if err := d.DeadLetter(ctx(t, h.timeout()), m, reason); err != nil {
				t.Fatalf("DeadLetter: %v", err)
			}
		} else {
			goodMsgs = append(goodMsgs, m)
		}
	}
	if err := d.Ack(ctx(t, h.timeout()), goodMsgs); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	dl := h.DeadLetters(t, a, 1)
	if len(dl) != 1 {
		t.Fatalf("dead letters of %s: %d, want exactly the malformed message", a, len(dl))
	}
	if string(dl[0].Value) != string(bad) {
		t.Errorf("dead letter body %q, want %q", dl[0].Value, bad)
	}
	r := dl[0].Reason
	if r == "" {
		r = dl[0].Headers[events.HeaderReason]
	}
	if r != reason {
		t.Errorf("dead letter reason %q, want %q (in header %s)", r, reason, events.HeaderReason)
	}
	// Dead-lettering acknowledges: the message does not come again.
	d.close()
	d2 := openSource(t, h, a)
	marker := body(a, 7)
	h.Produce(t, a, Produced{Value: marker})
	next := fetchN(t, h, d2, 1, a)
	if string(next[0].Value) != string(marker) {
		t.Fatalf("after DeadLetter and Ack the next driver got %q, want only the new message", next[0].Value)
	}
	if err := d2.Ack(ctx(t, h.timeout()), next); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if dl := h.DeadLetters(t, a, 1); len(dl) != 1 {
		t.Errorf("dead letters after a good message: %d, want 1", len(dl))
	}
}

func testFetchCancel(t *testing.T, h SourceHarness) {
	a := Tenant("cancel")
	d := openSource(t, h, a)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	msgs, err := d.Fetch(c, 10)
	if err == nil && len(msgs) > 0 {
		t.Fatalf("Fetch with a cancelled context returned %d messages", len(msgs))
	}
	if err != nil && !isCtxErr(err) {
		t.Errorf("Fetch with a cancelled context: %v, want a context error", err)
	}
	c2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	done := make(chan error, 1)
	go func() {
		for c2.Err() == nil {
			msgs, err := d.Fetch(c2, 10)
			if err != nil {
				done <- err
				return
			}
			for _, m := range msgs {
				if m.Tenant == a {
					done <- fmt.Errorf("message %s of an empty source", m.Position)
					return
				}
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil && !isCtxErr(err) {
			t.Errorf("Fetch of an empty source whose context ended: %v, want a context error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Fetch did not return within 5 s of its context's deadline")
	}
	if time.Since(start) > 6*time.Second {
		t.Errorf("cancelled fetches took %v", time.Since(start))
	}
}

func isCtxErr(err error) bool {
	c := greyerr.CodeOf(err)
	return c == greyerr.Canceled || c == greyerr.DeadlineExceeded
}

func testLag(t *testing.T, h SourceHarness) {
	a := Tenant("lag")
	d := openSource(t, h, a)
	for i := range 3 {
		h.Produce(t, a, Produced{Value: body(a, i)})
	}
	got := fetchN(t, h, d, 3, a)
	lag, err := d.Lag(ctx(t, h.timeout()))
	if h.NoLag {
		if err != nil && !greyerr.Is(err, greyerr.Unimplemented) {
			t.Errorf("Lag: %v", err)
		}
	} else {
		if err != nil {
			t.Fatalf("Lag: %v", err)
		}
		if lag[a] < 1 {
			t.Errorf("Lag[%s] = %d with 3 messages not acknowledged, want ≥ 1 (all lag: %v)", a, lag[a], lag)
		}
	}
	if err := d.Ack(ctx(t, h.timeout()), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if h.NoLag {
		return
	}
	deadline := time.Now().Add(h.timeout())
	for {
		lag, err := d.Lag(ctx(t, h.timeout()))
		if err != nil {
			t.Fatalf("Lag: %v", err)
		}
		if lag[a] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lag[%s] = %d after every message was acknowledged, want 0", a, lag[a])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testSourceUnreachable(t *testing.T, h SourceHarness) {
	if h.Unreachable == nil {
		t.Skip("the harness has no unreachable broker")
	}
	d, err := h.Unreachable(t)
	if err != nil {
		if !greyerr.Is(err, greyerr.Unavailable) {
			t.Fatalf("opening a source on an unreachable broker: %v (code %s), want Unavailable", err, greyerr.CodeOf(err))
		}
		return
	}
	defer d.Close()
	c := ctx(t, h.timeout()+10*time.Second)
	for c.Err() == nil {
		_, err := d.Fetch(c, 1)
		if err == nil {
			continue
		}
		if !greyerr.Is(err, greyerr.Unavailable) {
			t.Fatalf("Fetch from an unreachable broker: %v (code %s), want Unavailable", err, greyerr.CodeOf(err))
		}
		return
	}
	t.Fatal("Fetch from an unreachable broker never returned Unavailable")
}
