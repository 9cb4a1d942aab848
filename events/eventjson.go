package events

import (
	"encoding/json"
	"strconv"
	"time"
)

// The sink encodes two small JSON bodies for every finished task. Going
// through encoding/json's reflection cost about half of the sink's CPU on
// the noop path, so the bodies are appended by hand here. The output is
// byte for byte what json.Marshal writes for the same struct (a test and a
// fuzz target compare the two): values the fast path does not handle
// (strings needing escapes, results needing compaction, nested structs)
// are written by json.Marshal itself.

// appendResultBody appends rb as json.Marshal(rb) would write it.
func appendResultBody(dst []byte, rb *ResultBody) ([]byte, error) {
	var err error
	dst = append(dst, `{"task_id":`...)
	dst = appendJSONString(dst, rb.TaskID)
	dst = append(dst, `,"tenant_id":`...)
	dst = appendJSONString(dst, rb.TenantID)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, rb.Kind)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, string(rb.Status))
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(rb.Attempt), 10)
	if rb.IdempotencyKey != "" {
		dst = append(dst, `,"idempotency_key":`...)
		dst = appendJSONString(dst, rb.IdempotencyKey)
	}
	if len(rb.Result) > 0 {
		dst = append(dst, `,"result":`...)
		if dst, err = appendRawJSON(dst, rb.Result); err != nil {
			return nil, err
		}
	}
	if rb.ResultRef != nil {
		dst = append(dst, `,"result_ref":`...)
		if dst, err = appendMarshal(dst, rb.ResultRef); err != nil {
			return nil, err
		}
	}
	if rb.ResultOmitted {
		dst = append(dst, `,"result_omitted":true`...)
	}
	if rb.ResultBytes != 0 {
		dst = append(dst, `,"result_bytes":`...)
		dst = strconv.AppendInt(dst, int64(rb.ResultBytes), 10)
	}
	if rb.Error != nil {
		dst = append(dst, `,"error":`...)
		if dst, err = appendMarshal(dst, rb.Error); err != nil {
			return nil, err
		}
	}
	if rb.FinishedAt != nil {
		dst = append(dst, `,"finished_at":`...)
		if dst, err = appendJSONTime(dst, *rb.FinishedAt); err != nil {
			return nil, err
		}
	}
	if rb.ProofID != "" {
		dst = append(dst, `,"proof_id":`...)
		dst = appendJSONString(dst, rb.ProofID)
	}
	return append(dst, '}'), nil
}

// appendLifecycleBody appends lb as json.Marshal(lb) would write it.
func appendLifecycleBody(dst []byte, lb *LifecycleBody) ([]byte, error) {
	dst = append(dst, `{"type":`...)
	dst = appendJSONString(dst, lb.Type)
	dst = append(dst, `,"task_id":`...)
	dst = appendJSONString(dst, lb.TaskID)
	dst = append(dst, `,"tenant_id":`...)
	dst = appendJSONString(dst, lb.TenantID)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, lb.Kind)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, string(lb.Status))
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(lb.Attempt), 10)
	dst = append(dst, `,"at":`...)
	dst, err := appendJSONTime(dst, lb.At)
	if err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// appendJSONString appends s quoted. Printable ASCII other than the
// characters encoding/json escapes ('"', '\\' and, HTML-safe, '<', '>',
// '&') is copied; anything else goes through json.Marshal.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendRawJSON appends a json.RawMessage as json.Marshal does (valid,
// compacted, HTML-escaped). A value with no whitespace, no non-ASCII and
// no '<', '>', '&' is already in that form once it is valid.
func appendRawJSON(dst []byte, raw json.RawMessage) ([]byte, error) {
	for _, c := range raw {
		if c <= ' ' || c > 0x7e || c == '<' || c == '>' || c == '&' {
			return appendMarshal(dst, raw)
		}
	}
	if !json.Valid(raw) {
		return appendMarshal(dst, raw) // the same error json.Marshal gives
	}
	return append(dst, raw...), nil
}

// appendJSONTime appends t as time.Time's MarshalJSON does.
func appendJSONTime(dst []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendText(append(dst, '"'))
	if err != nil {
		return appendMarshal(dst, t) // the same error json.Marshal gives
	}
	return append(out, '"'), nil
}

// appendMarshal appends json.Marshal(v).
func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}
