package kafkaevents

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// Header names the driver reads or writes.
const (
	// HeaderContentType names the body's media type on a task message
	// (application/json when absent).
	HeaderContentType = events.HeaderContentType
	// HeaderDLQReason carries why a message was dead-lettered.
	HeaderDLQReason = events.HeaderReason
	// HeaderDLQTopic, HeaderDLQPartition and HeaderDLQOffset say where
	// the dead-lettered message was; HeaderDLQPosition is the three as
	// one Position.
	HeaderDLQTopic     = "grey-dlq-topic"
	HeaderDLQPartition = "grey-dlq-partition"
	HeaderDLQOffset    = "grey-dlq-offset"
	HeaderDLQPosition  = "grey-dlq-position"
	// HeaderDLQTruncated is set, to the body's size in bytes, when the
	// body was too large to copy into the dead-letter record.
	HeaderDLQTruncated = "grey-dlq-truncated"
)

// Content types a task message may declare.
const (
	ContentTypeJSON = events.ContentTypeJSON
	ContentTypeAvro = events.ContentTypeAvro
)

// positionPrefix starts every Kafka position.
const positionPrefix = "kafka:"

// Position returns the position of a record: "kafka:<topic>/<partition>/<offset>",
// the idempotency key of the task it becomes. Topic names cannot hold '/',
// so the form is unambiguous.
func Position(topic string, partition int32, offset int64) string {
	return positionPrefix + topic + "/" + strconv.FormatInt(int64(partition), 10) + "/" + strconv.FormatInt(offset, 10)
}

// ParsePosition splits a position made by Position. A string of another
// form is InvalidArgument.
func ParsePosition(pos string) (topic string, partition int32, offset int64, err error) {
	bad := func() (string, int32, int64, error) {
		return "", 0, 0, greyerr.Invalid("position", "kafka: %q is not a position (kafka:<topic>/<partition>/<offset>)", pos)
	}
	rest, ok := strings.CutPrefix(pos, positionPrefix)
	if !ok {
		return bad()
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" {
		return bad()
	}
	p, err1 := strconv.ParseInt(parts[1], 10, 32)
	o, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 ||
		strconv.FormatInt(p, 10) != parts[1] || strconv.FormatInt(o, 10) != parts[2] {
		return bad()
	}
	return parts[0], int32(p), o, nil
}

// TenantOf returns the tenant a topic belongs to: the name after prefix,
// or "" when the topic does not start with prefix (the portable Consumer
// dead-letters such messages as of an unknown tenant).
func TenantOf(topic, prefix string) string {
	t, ok := strings.CutPrefix(topic, prefix)
	if !ok {
		return ""
	}
	return t
}

// headerMap flattens record headers into a map. A key given twice with
// different values keeps every value, joined with ",", so that a check of
// a header's value (the tenant a message names, its content type) cannot
// be satisfied by one copy while another copy says otherwise.
func headerMap(hs []kgo.RecordHeader) map[string]string {
	if len(hs) == 0 {
		return map[string]string{}
	}
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		v := string(h.Value)
		if old, ok := m[h.Key]; ok && old != v {
			v = old + "," + v
		}
		m[h.Key] = v
	}
	return m
}

// ContentTypeOf returns the media type named by a content-type header
// (the key matched without regard to case; parameters such as charset
// dropped; lower-cased), or application/json when there is none. Other
// values are returned as they are, for the Consumer to refuse.
func ContentTypeOf(headers map[string]string) string {
	var v string
	found := false
	for k, hv := range headers {
		if strings.EqualFold(k, HeaderContentType) {
			if found && hv != v {
				v = v + "," + hv // conflicting copies: nothing matches
			} else {
				v = hv
			}
			found = true
		}
	}
	if i := strings.IndexByte(v, ';'); i >= 0 && !strings.Contains(v, ",") {
		v = v[:i]
	}
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return ContentTypeJSON
	}
	return v
}

// messageOf converts a fetched record into a Message; h is its handle.
func messageOf(r *kgo.Record, tasksPrefix string, h *handle) *events.Message {
	headers := headerMap(r.Headers)
	return &events.Message{
		Source:      r.Topic,
		Tenant:      TenantOf(r.Topic, tasksPrefix),
		Key:         r.Key,
		Value:       r.Value,
		Headers:     headers,
		ContentType: ContentTypeOf(headers),
		Position:    Position(r.Topic, r.Partition, r.Offset),
		Handle:      h,
	}
}
