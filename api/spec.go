package api

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/grey-distributed/grey/greyerr"
)

//go:embed openapi.yaml
var specYAML []byte

// Spec returns the OpenAPI 3.0 document of the HTTP API (api/openapi.yaml),
// as served at GET /api/v1/openapi.yaml. The returned slice is shared: callers
// must not modify it.
func Spec() []byte { return specYAML }

// Validator checks requests and responses against the OpenAPI document. It is
// built once and safe for concurrent use; tests use it to hold the server to
// its contract, and the server may use it to reject malformed requests early.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
}

// NewValidator loads and validates the embedded document and builds a router
// over its paths.
func NewValidator() (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(specYAML)
	if err != nil {
		return nil, fmt.Errorf("api: load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api: openapi.yaml is invalid: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("api: route openapi.yaml: %w", err)
	}
	return &Validator{
		doc:    doc,
		router: router,
		opts: &openapi3filter.Options{
			// Authentication is the server's job; the document only declares it.
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			// A checker must not rewrite the request it checks.
			SkipSettingDefaults: true,
			// A status the document does not list is a contract violation.
			IncludeResponseStatus: true,
		},
	}, nil
}

// ValidateRequest checks req (method, path, parameters, headers) and its body
// against the document. req.Body is not read; body is the request body.
//
// A request for a path or method the document does not describe returns a
// NotFound error; any other violation returns an InvalidArgument error whose
// Field names the parameter or the body field (as "tasks[3].priority"), so a
// server may return it to the client unchanged.
func (v *Validator) ValidateRequest(req *http.Request, body []byte) error {
	in, err := v.input(req, body)
	if err != nil {
		return err
	}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		return requestError(err)
	}
	return nil
}

// ValidateResponse checks a response to req (its status, headers and body)
// against the document. req.Body is not read. A violation is returned as an
// Internal error naming the operation and wrapping kin-openapi's error.
func (v *Validator) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	in, err := v.input(req, nil)
	if err != nil {
		return err
	}
	if header == nil {
		header = http.Header{}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                v.opts,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		return &greyerr.Error{
			Code:    greyerr.Internal,
			Message: fmt.Sprintf("%s %s: response %d does not match the API spec", req.Method, in.Route.Path, status),
			Err:     err,
		}
	}
	return nil
}

// input finds req's route and builds the validation input over a copy of req
// that reads body.
func (v *Validator) input(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		code := greyerr.NotFound
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			code = greyerr.Unimplemented
		}
		return nil, &greyerr.Error{
			Code:    code,
			Message: fmt.Sprintf("%s %s is not in the API spec", req.Method, req.URL.Path),
			Err:     err,
		}
	}
	r := req.Clone(req.Context())
	if len(body) == 0 {
		r.Body = http.NoBody
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.ContentLength = int64(len(body))
	return &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options:    v.opts,
	}, nil
}

// requestError converts a kin-openapi request validation error into an
// InvalidArgument error naming the field.
func requestError(err error) error {
	ge := &greyerr.Error{Code: greyerr.InvalidArgument, Message: briefError(err), Err: err}
	var re *openapi3filter.RequestError
	if errors.As(err, &re) && re.Parameter != nil {
		ge.Field = re.Parameter.Name
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		if ge.Field == "" {
			ptr := se.JSONPointer()
			// An unknown property: name it, not only its object.
			if m := unsupportedRe.FindStringSubmatch(se.Reason); m != nil && se.SchemaField == "additionalProperties" {
				ptr = append(ptr, m[1])
			}
			ge.Field = fieldPath(ptr)
		}
		if ge.Field != "" && se.Reason != "" {
			ge.Message = se.Reason
		}
	}
	return ge
}

// unsupportedRe reads the property name of kin-openapi's
// additionalProperties error.
var unsupportedRe = regexp.MustCompile(`^property "(.*)" is unsupported$`)

// fieldPath renders a JSON pointer as a field name: ["tasks","3","kind"]
// becomes "tasks[3].kind".
func fieldPath(ptr []string) string {
	var b strings.Builder
	for _, p := range ptr {
		if _, err := strconv.Atoi(p); err == nil && b.Len() > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// briefError returns the first line of err's message: kin-openapi appends the
// schema and the value on following lines.
func briefError(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
