package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// goccy/go-json writes what encoding/json writes (TestResponsesMatchEncodingJSON)
	// at about half the CPU and a fraction of the allocations: a batch
	// submit answers with every task it created.
	enc := gojson.NewEncoder(w)
	_ = enc.Encode(v)
}

// reply writes v as JSON with status 200, or err when it is not nil: the
// end of a handler that answers what a store call returned.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeStored answers a PUT or POST that stored v at location: 201 when
// it created it, 200 when it was there already.
func writeStored(w http.ResponseWriter, created bool, location string, v any) {
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	w.Header().Set("Location", location)
	writeJSON(w, status, v)
}

// writeError renders err with the one code→status mapping.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if s.opts.Refused != nil {
		if ten, terr := tenantOf(r); terr == nil {
			s.opts.Refused(ten, err)
		}
	}
	var ge *greyerr.Error
	if !errors.As(err, &ge) {
		ge = &greyerr.Error{Code: greyerr.CodeOf(err), Message: err.Error()}
		if ge.Code == greyerr.Unknown {
			ge.Code = greyerr.Internal
		}
	}
	status := greyerr.HTTPStatus(ge.Code)
	if status >= 500 && ge.Code != greyerr.Unavailable {
		s.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ge.RetryAfter > 0 || status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		secs := int(ge.RetryAfter.Seconds() + 0.999)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	msg := ge.Message
	if ge.Err != nil && ge.Code != greyerr.Internal {
		msg += ": " + ge.Err.Error()
	}
	writeJSON(w, status, errorBody{Code: string(ge.Code), Message: msg, Field: ge.Field, Reason: ge.Reason})
}

// decode reads a JSON body strictly: bounded size, unknown fields refused,
// one value only, and what JSON parsers could read differently refused
// (checkStrictJSON: invalid UTF-8, duplicate keys, case-folded field
// names). Errors name the field where the decoder can.
//
// The body is JSON whatever the Content-Type says, with two exceptions:
// a type that is clearly something else (not application/json, a +json
// type, or the form type that curl -d sends) is refused, and the form
// type is refused from browsers (a request with an Origin or Cookie
// header), where it is the cross-site request a CORS preflight never
// checks.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := jsonContentType(r); err != nil {
		return err
	}
	raw, err := readBody(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), r.ContentLength)
	if err != nil {
		return decodeError(err, s.opts.MaxBodyBytes)
	}
	t := reflect.TypeOf(v)
	if st, ok := v.(strictTyped); ok {
		t = st.strictType()
	}
	if err := checkStrictJSON(raw, t, &s.fields); err != nil {
		return err
	}
	if fastDecode(raw, v) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return withFieldPath(decodeError(err, s.opts.MaxBodyBytes), raw, v)
	}
	if dec.More() {
		return greyerr.Invalid("body", "must hold exactly one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return greyerr.Invalid("body", "must hold exactly one JSON value")
	}
	return nil
}

// preallocMax bounds the buffer readBody sizes from a request's declared
// length before any byte arrived: a larger body grows it as it comes.
const preallocMax = 1 << 20

// readBody reads body whole. With the request's declared length it reads
// into one buffer of that size (up to preallocMax) instead of growing one
// from 512 bytes, which copied a worker's 100 KB report batch several
// times over.
func readBody(body io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 {
		return io.ReadAll(body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(declared, preallocMax)+bytes.MinRead))
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

// strictTyped is a request type decoded in parts (its items held raw):
// strictType is the type the whole document is checked against.
type strictTyped interface{ strictType() reflect.Type }

// formContentType is what curl -d sends by default.
const formContentType = "application/x-www-form-urlencoded"

// jsonContentType accepts a request body's Content-Type as JSON (see
// decode).
func jsonContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return greyerr.Invalid("Content-Type", "must be application/json, got %q", ct)
	}
	switch {
	case mt == "application/json", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		return nil
	case mt == formContentType:
		if r.Header.Get("Origin") != "" || r.Header.Get("Cookie") != "" {
			return greyerr.Invalid("Content-Type", "must be application/json for a request from a browser, got %q", ct)
		}
		return nil
	}
	return greyerr.Invalid("Content-Type", "must be application/json, got %q", ct)
}

// decodeItem strictly decodes element i of the request array name
// (already known to be well-formed JSON) into v; error fields are
// prefixed with the element's path, as in "tasks[3].priority".
func decodeItem(raw json.RawMessage, v any, name string, i int) error {
	if fastDecode(raw, v) {
		return nil
	}
	prefix := name + "[" + strconv.Itoa(i) + "]"
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	err = withFieldPath(decodeError(err, 0), raw, v)
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		if ge.Field == "" || ge.Field == "body" {
			ge.Field = prefix
		} else {
			ge.Field = prefix + "." + ge.Field
		}
	}
	return err
}

// fastDecode decodes the one JSON value raw into v with goccy/go-json,
// unknown fields refused, and reports whether it did; when it did not, v
// is back to its zero value and the caller decodes again with
// encoding/json for its error (which names the field). Bodies of a batch
// submit and of workers' reports are large and frequent; the fuzz tests
// FuzzDecodeItemAgrees and FuzzDecodeAgrees check that what the fast
// decoder accepts, encoding/json accepts with the same result.
func fastDecode(raw []byte, v any) bool {
	// Unmarshal checks that nothing but white space follows the value.
	if gojson.UnmarshalWithOption(raw, v, disallowUnknownFields) == nil {
		return true
	}
	clearValue(v)
	return false
}

// disallowUnknownFields is goccy/go-json's DisallowUnknownFields as a
// decode option. goccy offers it only on its stream Decoder, which
// allocates a stream and its buffer per body; the option flag it sets is
// read once from such a Decoder, so that Unmarshal (pooled buffers, no
// stream) refuses unknown fields too. TestDisallowUnknownFieldsOption
// checks it does.
var disallowUnknownFields = func() gojson.DecodeOptionFunc {
	var flags gojson.DecodeOption
	d := gojson.NewDecoder(strings.NewReader("{}"))
	d.DisallowUnknownFields()
	_ = d.DecodeWithOption(&struct{}{}, func(o *gojson.DecodeOption) { flags.Flags = o.Flags })
	return func(o *gojson.DecodeOption) { o.Flags |= flags.Flags }
}()

// clearValue resets *v (a pointer) to its zero value, undoing a failed
// partial decode.
func clearValue(v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv.Elem().SetZero()
	}
}

// withFieldPath gives an unknown-field error the field's whole path in the
// document raw decoded into v (encoding/json names only the key).
func withFieldPath(err error, raw []byte, v any) error {
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Reason != unknownFieldReason {
		return err
	}
	ge.Reason = ""
	if p := unknownFieldPath(raw, reflect.TypeOf(v), ge.Field); p != ge.Field {
		ge.Field = p
		ge.Message = fmt.Sprintf("unknown field %q", p)
	}
	return err
}

// unknownFieldReason marks decodeError's unknown-field errors for
// withFieldPath (and is cleared there).
const unknownFieldReason = "unknown_field"

// decodeError turns encoding/json's errors into InvalidArgument/TooLarge.
func decodeError(err error, max int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		e := greyerr.New(greyerr.TooLarge, "request body exceeds %d bytes", max)
		e.Field = "body"
		return e
	case errors.Is(err, io.EOF):
		return greyerr.Invalid("body", "is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return greyerr.Invalid("body", "malformed JSON: unexpected end of input")
	case errors.As(err, &syn):
		return greyerr.Invalid("body", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		want := typ.Type.String()
		if want == "task.Duration" {
			want = "a duration such as \"1.5s\" (or milliseconds)"
		}
		return greyerr.Invalid(field, "must be %s, got JSON %s", want, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e := greyerr.Invalid(f, "unknown field %q", f)
		e.Reason = unknownFieldReason
		return e
	}
	return greyerr.Invalid("body", "%v", err)
}

// kindParam is the ?kind= filter: absent, or a well-formed kind.
func kindParam(q url.Values) (string, error) {
	k := q.Get("kind")
	if k != "" && !task.ValidKind(k) {
		return "", greyerr.Invalid("kind", "%q is not a valid kind (lower-case letters, digits, '_', '-', '.'; at most 63)", k)
	}
	return k, nil
}

func parseStatuses(v string) ([]task.Status, error) {
	if v == "" {
		return nil, nil
	}
	var out []task.Status
	for _, p := range strings.Split(v, ",") {
		st := task.Status(strings.TrimSpace(p))
		if !st.Valid() {
			return nil, greyerr.Invalid("status", "unknown status %q", st)
		}
		out = append(out, st)
	}
	return out, nil
}

func fmtInt(n int) string { return fmt.Sprint(n) }
