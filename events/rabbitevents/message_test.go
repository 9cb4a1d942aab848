package rabbitevents

import (
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPositionShapes(t *testing.T) {
	long := strings.Repeat("q", 190)
	for name, tc := range map[string]struct {
		d      delivery
		prefix string
	}{
		"message id":             {delivery{Queue: "grey.tasks.acme", MessageID: "order-17"}, "amqp:grey.tasks.acme/order-17"},
		"no message id":          {delivery{Queue: "grey.tasks.acme", Body: []byte("x")}, "amqp:grey.tasks.acme/sha256:"},
		"message id with spaces": {delivery{Queue: "grey.tasks.acme", MessageID: "a b"}, "amqp:grey.tasks.acme/sha256:"},
		"long queue":             {delivery{Queue: long, MessageID: "m"}, "amqp:"},
		"long message id":        {delivery{Queue: "grey.tasks.acme", MessageID: strings.Repeat("m", 255)}, "amqp:"},
	} {
		p := tc.d.position()
		if !strings.HasPrefix(p, tc.prefix) || len(p) > maxPosition || !printable(p) {
			t.Errorf("%s: position %q (%d bytes): want prefix %q, printable, at most %d bytes", name, p, len(p), tc.prefix, maxPosition)
		}
	}
	a := delivery{Queue: "q", RoutingKey: "acme.x", Body: []byte("b"), MessageID: "", Headers: amqp.Table{"k": "v"}}
	b := a
	b.Headers = amqp.Table{"k": "w"}
	if a.position() == b.position() {
		t.Error("different producer headers, same position")
	}
	// The broker's headers and the trace context are not the message's
	// identity.
	c := a
	c.Headers = amqp.Table{"k": "v", "x-delivery-count": int64(3), "traceparent": "00-1-2-01"}
	if a.position() != c.position() {
		t.Error("x-delivery-count or traceparent changed the position")
	}
}

func TestAttempt(t *testing.T) {
	for _, tc := range []struct {
		h    amqp.Table
		re   bool
		want int
	}{
		{nil, false, 1},
		{nil, true, 0},
		{amqp.Table{"x-delivery-count": int64(2)}, true, 3},
		{amqp.Table{"x-delivery-count": int32(0)}, false, 1},
		{amqp.Table{"x-delivery-count": "nonsense"}, true, 0},
		{amqp.Table{"x-delivery-count": int64(-5)}, false, 1},
	} {
		if got := attempt(tc.h, tc.re); got != tc.want {
			t.Errorf("attempt(%v, %v) = %d, want %d", tc.h, tc.re, got, tc.want)
		}
	}
}

func TestStringHeaders(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := stringHeaders(amqp.Table{
		"s": "v", "b": []byte("raw"), "i": int32(7), "f": 1.5, "ok": true, "t": ts,
		"x-death": []any{amqp.Table{"reason": "rejected"}}, "nested": amqp.Table{"a": "b"},
	})
	want := map[string]string{"s": "v", "b": "raw", "i": "7", "f": "1.5", "ok": "true", "t": "2026-01-02T03:04:05Z"}
	if len(got) != len(want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
}

// FuzzDelivery: whatever a producer sends, the message has a printable
// position of at most 200 bytes that does not change on redelivery, and
// the tenant is the queue's (or the routing key's first word for the
// unrouted queue).
func FuzzDelivery(f *testing.F) {
	f.Add("grey.tasks.acme", "acme", "acme.noop", []byte(`{"kind":"noop"}`), "", "application/json", "k", "v", false)
	f.Add("grey.tasks._unrouted", "", "ghost.resize.big", []byte{0xff}, "id 1", "", "traceparent", "00", true)
	f.Add("q", "", "", []byte(nil), strings.Repeat("é", 100), "avro/binary", "", "", true)
	f.Fuzz(func(t *testing.T, queue, tenant, key string, body []byte, msgID, ctype, hk, hv string, redelivered bool) {
		d := delivery{Queue: queue, Tenant: tenant, RoutingKey: key, Body: body, ContentType: ctype, MessageID: msgID,
			Headers: amqp.Table{hk: hv}, Redelivered: redelivered}
		m := d.toMessage()
		if len(m.Position) > maxPosition || !printable(m.Position) || !strings.HasPrefix(m.Position, "amqp:") {
			t.Fatalf("position %q", m.Position)
		}
		again := d
		again.Redelivered = true
		again.Headers = amqp.Table{hk: hv, "x-delivery-count": int64(4)}
		if hashedHeader(hk) {
			if p := again.toMessage().Position; p != m.Position {
				t.Fatalf("redelivery changed the position: %q then %q", m.Position, p)
			}
		}
		wantTenant := tenant
		if tenant == "" {
			wantTenant, _, _ = strings.Cut(key, ".")
		}
		if m.Tenant != wantTenant {
			t.Fatalf("tenant %q, want %q", m.Tenant, wantTenant)
		}
		if m.Headers[hk] != hv {
			t.Fatalf("header %q = %q, want %q", hk, m.Headers[hk], hv)
		}
		if m.ContentType == "" {
			t.Fatal("empty content type")
		}
	})
}
