package rabbitevents

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
)

// maxPosition is the longest idempotency key Grey accepts; a Position is
// printable ASCII of at most that length.
const maxPosition = 200

// delivery is what the driver keeps of one AMQP delivery: where it came
// from and the fields Position and the Message are made of. It is the
// driver's outside input (producers choose all of it but the queue).
type delivery struct {
	Queue       string
	Tenant      string // the queue's tenant; "" for the unrouted queue
	RoutingKey  string
	Body        []byte
	ContentType string
	MessageID   string
	Headers     amqp.Table
	Redelivered bool
}

// toMessage makes the port's Message of d. The tenant is the queue's, or
// for the unrouted queue the routing key's first word (which the Consumer
// checks against Grey's tenants).
func (d *delivery) toMessage() *events.Message {
	tenant := d.Tenant
	if tenant == "" {
		tenant, _, _ = strings.Cut(d.RoutingKey, ".")
	}
	m := &events.Message{
		Source:      d.Queue,
		Tenant:      tenant,
		Key:         []byte(d.RoutingKey),
		Value:       d.Body,
		Headers:     stringHeaders(d.Headers),
		ContentType: d.ContentType,
		Position:    d.position(),
		Attempt:     attempt(d.Headers, d.Redelivered),
	}
	if m.ContentType == "" {
		m.ContentType = "application/json"
	}
	return m
}

// attempt is x-delivery-count + 1 (quorum queues count returns), 1 for a
// first delivery without it, and 0 (unknown) for a redelivery from a
// classic queue.
func attempt(h amqp.Table, redelivered bool) int {
	if v, ok := h["x-delivery-count"]; ok {
		if n, ok := toInt(v); ok && n >= 0 && n < 1<<31-1 {
			return int(n) + 1
		}
	}
	if !redelivered {
		return 1
	}
	return 0
}

func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}

// stringHeaders converts AMQP header values to strings: scalars as text,
// byte arrays as they are, timestamps in RFC 3339; nested tables and
// arrays (x-death and the like) are left out.
func stringHeaders(h amqp.Table) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		if s, ok := headerString(v); ok {
			out[k] = s
		}
	}
	return out
}

func headerString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case bool:
		return strconv.FormatBool(x), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case time.Time:
		return x.UTC().Format(time.RFC3339), true
	case amqp.Decimal:
		return fmt.Sprintf("%de-%d", x.Value, x.Scale), true
	}
	if n, ok := toInt(v); ok {
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

// hashedHeader reports whether a header is part of a message's identity:
// the producer's own headers, not what the broker adds (x-*) nor the
// trace context (a producer retrying a publish may send another one).
func hashedHeader(k string) bool {
	k = strings.ToLower(k)
	return !strings.HasPrefix(k, "x-") && k != "traceparent" && k != "tracestate" && k != "baggage"
}

// position is the message's idempotency key: "amqp:<queue>/<message_id>"
// when the producer set a printable message_id, else
// "amqp:<queue>/sha256:<hex>" of the routing key, content type, body and
// the producer's headers. Identical messages without message_id are
// therefore one task. A queue name too long for the key is replaced by
// the first 16 hex digits of its SHA-256.
func (d *delivery) position() string {
	var suffix string
	if d.MessageID != "" && printable(d.MessageID) {
		suffix = d.MessageID
	} else {
		suffix = "sha256:" + d.digest()
	}
	p := "amqp:" + d.Queue + "/" + suffix
	if len(p) <= maxPosition && printable(p) {
		return p
	}
	q := sha256.Sum256([]byte(d.Queue))
	p = "amqp:" + hex.EncodeToString(q[:8]) + "/" + suffix
	if len(p) <= maxPosition {
		return p
	}
	// a message_id too long: hash it with the rest
	return "amqp:" + hex.EncodeToString(q[:8]) + "/sha256:" + d.digest()
}

// digest hashes the message's identity fields, each length-prefixed so
// that no two different messages share an encoding.
func (d *delivery) digest() string {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(d.MessageID))
	field([]byte(d.RoutingKey))
	field([]byte(d.ContentType))
	field(d.Body)
	keys := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		if hashedHeader(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := headerString(d.Headers[k])
		if !ok {
			v = fmt.Sprintf("%T", d.Headers[k])
		}
		field([]byte(k))
		field([]byte(v))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
