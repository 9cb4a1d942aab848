package kafkaevents

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

func TestPositionRoundTrip(t *testing.T) {
	pos := Position("grey.tasks.acme", 3, 1207)
	if pos != "kafka:grey.tasks.acme/3/1207" {
		t.Fatalf("Position = %q", pos)
	}
	topic, p, o, err := ParsePosition(pos)
	if err != nil || topic != "grey.tasks.acme" || p != 3 || o != 1207 {
		t.Fatalf("ParsePosition = %q %d %d %v", topic, p, o, err)
	}
	for _, bad := range []string{
		"", "kafka:", "kafka:t/1", "kafka:t/1/2/3", "kafka:/1/2", "amqp:t/1/2",
		"kafka:t/-1/2", "kafka:t/1/-2", "kafka:t/01/2", "kafka:t/+1/2", "kafka:t/1/x",
		"kafka:t/99999999999/1",
	} {
		if _, _, _, err := ParsePosition(bad); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("ParsePosition(%q) = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestTenantOf(t *testing.T) {
	for topic, want := range map[string]string{
		"grey.tasks.acme":      "acme",
		"grey.tasks.a.b":       "a.b",
		"grey.tasks.":          "",
		"grey.results.acme":    "",
		"other.grey.tasks.x":   "",
		"grey.tasks.acme-corp": "acme-corp",
	} {
		if got := TenantOf(topic, DefaultTasksPrefix); got != want {
			t.Errorf("TenantOf(%q) = %q, want %q", topic, got, want)
		}
	}
}

func TestContentTypeOf(t *testing.T) {
	for _, c := range []struct {
		headers map[string]string
		want    string
	}{
		{nil, ContentTypeJSON},
		{map[string]string{"content-type": ""}, ContentTypeJSON},
		{map[string]string{"content-type": "avro/binary"}, ContentTypeAvro},
		{map[string]string{"Content-Type": " Application/JSON; charset=utf-8 "}, ContentTypeJSON},
		{map[string]string{"content-type": "text/plain"}, "text/plain"},
		// Two copies that disagree match nothing.
		{map[string]string{"content-type": "avro/binary", "Content-Type": "application/json"}, ""},
	} {
		got := ContentTypeOf(c.headers)
		if c.want == "" {
			if got == ContentTypeJSON || got == ContentTypeAvro {
				t.Errorf("ContentTypeOf(%v) = %q, want neither JSON nor Avro", c.headers, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("ContentTypeOf(%v) = %q, want %q", c.headers, got, c.want)
		}
	}
}

func TestHeaderMapConflicts(t *testing.T) {
	m := headerMap([]kgo.RecordHeader{
		{Key: "grey-tenant-id", Value: []byte("acme")},
		{Key: "grey-tenant-id", Value: []byte("evil")},
		{Key: "traceparent", Value: []byte("00-a-b-01")},
		{Key: "traceparent", Value: []byte("00-a-b-01")},
	})
	if m["grey-tenant-id"] == "acme" || m["grey-tenant-id"] == "evil" {
		t.Fatalf("conflicting tenant headers flattened to one of them: %q", m["grey-tenant-id"])
	}
	if m["traceparent"] != "00-a-b-01" {
		t.Fatalf("repeated equal header = %q", m["traceparent"])
	}
}

func TestMessageOf(t *testing.T) {
	r := &kgo.Record{
		Topic: "grey.tasks.acme", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte(`{"kind":"noop"}`),
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("avro/binary")}, {Key: "traceparent", Value: []byte("00-x")}},
	}
	m := messageOf(r, DefaultTasksPrefix, &handle{})
	if m.Tenant != "acme" || m.Source != "grey.tasks.acme" || m.Position != "kafka:grey.tasks.acme/2/41" ||
		m.ContentType != ContentTypeAvro || m.Headers["traceparent"] != "00-x" || string(m.Key) != "k" {
		t.Fatalf("messageOf = %+v", m)
	}
}

func TestDLQRecord(t *testing.T) {
	m := &events.Message{
		Tenant: "acme", Position: "kafka:grey.tasks.acme/0/7", Key: []byte("k"), Value: []byte("0123456789"),
		Headers: map[string]string{"traceparent": "00-x", HeaderDLQReason: "old reason"},
	}
	h := &handle{tp: topicPartition{"grey.tasks.acme", 0}, offset: 7}
	long := strings.Repeat("é", maxReasonBytes) // 2 bytes each
	rec := dlqRecord("grey.dlq.acme", m, h, long, 100)
	got := map[string]string{}
	n := 0
	for _, hd := range rec.Headers {
		if hd.Key == HeaderDLQReason {
			n++
		}
		got[hd.Key] = string(hd.Value)
	}
	if n != 1 {
		t.Fatalf("%d reason headers, want 1 (the old one replaced)", n)
	}
	if r := got[HeaderDLQReason]; len(r) > maxReasonBytes || !utf8.ValidString(r) || !strings.HasPrefix(r, "éé") {
		t.Fatalf("reason not cut cleanly: %d bytes, valid %v", len(r), utf8.ValidString(r))
	}
	if got[HeaderDLQTopic] != "grey.tasks.acme" || got[HeaderDLQPartition] != "0" || got[HeaderDLQOffset] != "7" ||
		got[HeaderDLQPosition] != m.Position || got["traceparent"] != "00-x" || string(rec.Value) != "0123456789" {
		t.Fatalf("dlq record: %v value %q", got, rec.Value)
	}
	if _, ok := got[HeaderDLQTruncated]; ok {
		t.Fatal("truncated header on a small body")
	}
	rec = dlqRecord("grey.dlq.acme", m, h, "too big", 5)
	if rec.Value != nil {
		t.Fatal("body over the bound copied")
	}
	for _, hd := range rec.Headers {
		if hd.Key == HeaderDLQTruncated && string(hd.Value) != "10" {
			t.Fatalf("truncated = %q, want 10", hd.Value)
		}
	}
}

func TestParseConfig(t *testing.T) {
	u := func(s string) *url.URL {
		t.Helper()
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	c, err := parseConfig(u("kafka://h1:9092,h2:9093/?compression=zstd&partitions=6&replication=3"), map[string]string{"start": "latest"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.brokers) != 2 || c.brokers[1] != "h2:9093" || c.partitions != 6 || c.replication != 3 || !c.startLatest {
		t.Fatalf("config %+v", c)
	}
	c, err = parseConfig(u("kafka://ignored:1/"), map[string]string{"brokers": "a:1, b:2", "sasl_mechanism": "scram-sha-512", "sasl_username": "u", "sasl_password": "p"})
	if err != nil || len(c.brokers) != 2 || c.brokers[0] != "a:1" {
		t.Fatalf("brokers setting: %+v %v", c, err)
	}
	// Settings carry every driver's keys: another driver's are ignored.
	if _, err := parseConfig(u("kafka://h:1/"), map[string]string{"queue_type": "quorum", "delivery_limit": "5"}); err != nil {
		t.Fatalf("another driver's settings: %v", err)
	}
	for _, bad := range []struct {
		url      string
		settings map[string]string
		field    string
	}{
		{"kafka:///", nil, SettingBrokers},
		{"kafka://h:1/?nope=1", nil, "nope"},
		{"kafka://h:1/?queue_type=quorum", nil, "queue_type"},
		{"kafka://h:1/", map[string]string{"compression": "brotli"}, SettingCompression},
		{"kafka://h:1/", map[string]string{"topics_regex": "("}, SettingTopicsRegex},
		{"kafka://h:1/", map[string]string{"partitions": "0"}, SettingPartitions},
		{"kafka://h:1/", map[string]string{"partitions": "x"}, SettingPartitions},
		{"kafka://h:1/", map[string]string{"linger": "soon"}, SettingLinger},
		{"kafka://h:1/", map[string]string{"start": "middle"}, SettingStart},
		{"kafka://h:1/", map[string]string{"transactional": "maybe"}, SettingTransactional},
		{"kafka://h:1/", map[string]string{"sasl_mechanism": "GSSAPI", "sasl_username": "u"}, SettingSASLMechanism},
		{"kafka://h:1/", map[string]string{"sasl_mechanism": "PLAIN"}, SettingSASLUsername},
		{"kafka://h:1/", map[string]string{"sasl_username": "u"}, SettingSASLMechanism},
		{"kafka://h:1/", map[string]string{"tls": "yes please"}, SettingTLS},
		{"kafka://h:1/", map[string]string{"tls_ca_file": "/nonexistent/ca.pem"}, SettingTLSCAFile},
		{"kafka://h:1/", map[string]string{"tls": "true", "tls_cert": "/x.pem"}, SettingTLSCert},
	} {
		_, err := parseConfig(u(bad.url), bad.settings)
		var ge *greyerr.Error
		if !greyerr.Is(err, greyerr.InvalidArgument) || !asGrey(err, &ge) || ge.Field != bad.field {
			t.Errorf("parseConfig(%s, %v) = %v, want InvalidArgument on %s", bad.url, bad.settings, err, bad.field)
		}
	}
}

func asGrey(err error, ge **greyerr.Error) bool {
	e, ok := err.(*greyerr.Error)
	if ok {
		*ge = e
	}
	return ok
}

func TestOpenNeedsGroup(t *testing.T) {
	u, _ := url.Parse("kafka://127.0.0.1:1/")
	if _, err := OpenSource(context.Background(), u, events.SourceOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("OpenSource without group = %v", err)
	}
}

// FuzzMessageOf feeds arbitrary topics, headers and bodies through the
// record → Message conversion and checks what the portable layer relies
// on: the position parses back to the record's place, the tenant is the
// topic's suffix, the content type is lower-case and never empty, and a
// header given twice with different values never reads as either one.
func FuzzMessageOf(f *testing.F) {
	f.Add("grey.tasks.acme", int32(0), int64(0), "content-type", "application/json", "grey-tenant-id", "acme", []byte(`{}`))
	f.Add("grey.tasks.a", int32(7), int64(99), "Content-Type", "avro/binary; x=y", "content-type", "avro/binary", []byte{0, 1})
	f.Add("grey.tasks.x", int32(1), int64(1), "grey-tenant-id", "a", "grey-tenant-id", "b", []byte(nil))
	f.Fuzz(func(t *testing.T, topic string, partition int32, offset int64, k1, v1, k2, v2 string, body []byte) {
		if partition < 0 || offset < 0 || topic == "" || strings.Contains(topic, "/") {
			return // not what a broker delivers
		}
		r := &kgo.Record{Topic: topic, Partition: partition, Offset: offset, Value: body,
			Headers: []kgo.RecordHeader{{Key: k1, Value: []byte(v1)}, {Key: k2, Value: []byte(v2)}}}
		m := messageOf(r, DefaultTasksPrefix, &handle{})
		gt, gp, gotOff, err := ParsePosition(m.Position)
		if err != nil || gt != topic || gp != partition || gotOff != offset {
			t.Fatalf("position %q does not parse back: %q %d %d %v", m.Position, gt, gp, gotOff, err)
		}
		if strings.HasPrefix(topic, DefaultTasksPrefix) != (m.Tenant != "" || topic == DefaultTasksPrefix) {
			t.Fatalf("tenant %q of topic %q", m.Tenant, topic)
		}
		if m.Tenant != "" && DefaultTasksPrefix+m.Tenant != topic {
			t.Fatalf("tenant %q is not the suffix of %q", m.Tenant, topic)
		}
		if m.ContentType == "" || m.ContentType != strings.ToLower(m.ContentType) {
			t.Fatalf("content type %q", m.ContentType)
		}
		if k1 == k2 && v1 != v2 && (m.Headers[k1] == v1 || m.Headers[k1] == v2) {
			t.Fatalf("conflicting header %q flattened to one value %q", k1, m.Headers[k1])
		}
	})
}

// FuzzParsePosition checks that whatever parses formats back to itself.
func FuzzParsePosition(f *testing.F) {
	f.Add("kafka:grey.tasks.acme/3/1207")
	f.Add("kafka:a/0/0")
	f.Add("kafka:a//0")
	f.Fuzz(func(t *testing.T, s string) {
		topic, p, o, err := ParsePosition(s)
		if err != nil {
			return
		}
		if back := Position(topic, p, o); back != s {
			t.Fatalf("ParsePosition(%q) formats back as %q", s, back)
		}
	})
}
