// Package remote holds what the drivers of remote model servers share (the
// Open Inference Protocol driver, the TF Serving driver): their URL's
// common options, an HTTP client that maps failures to the runtime port's
// error codes, and the table of loaded keys.
package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// DefaultMaxResponseBytes bounds a server's answer when the URL sets no
// max_response_bytes.
const DefaultMaxResponseBytes = 256 << 20

// Options are a remote runtime URL's options.
type Options struct {
	// Base is the server's URL (http or https), with any path prefix.
	Base *url.URL
	// Names maps Grey model names to the server's (model=grey=server);
	// a name not in it is the same on the server.
	Names map[string]string
	// Versioned puts the model's version in the request paths (default
	// true; versioned=false for servers that serve one version a name,
	// such as KServe's Python model server).
	Versioned bool
	// RequireDigest fails a load when the server does not report the
	// model's digest (digest=require).
	RequireDigest bool
	// Frameworks the server serves (default both).
	Frameworks []ai.Framework
	// Devices the server places models on (default cpu).
	Devices []string
	// Timeout bounds one call whose context has no deadline (URL timeout,
	// else the runtime's OpenOptions.Timeout, else 30s).
	Timeout time.Duration
	// MaxResponseBytes bounds a server's answer.
	MaxResponseBytes int64
	// CAFile, for https, is a PEM file of the CAs to trust (default the
	// system's).
	CAFile string
	// TokenFile holds a bearer token sent with every request (read when
	// the driver opens; surrounding space trimmed).
	TokenFile string
}

// ServerName maps a Grey model name to the server's.
func (o *Options) ServerName(name string) string {
	if n, ok := o.Names[name]; ok {
		return n
	}
	return name
}

// ParseURL reads a remote runtime URL: scheme prefix+"+http" or
// prefix+"+https", host, optional path prefix, and the common options as
// query parameters; extra names the driver's own parameters, returned in
// the second result.
func ParseURL(u *url.URL, prefix string, extra []string, opts ai.OpenOptions) (Options, url.Values, error) {
	o := Options{Versioned: true, MaxResponseBytes: DefaultMaxResponseBytes, Names: map[string]string{}}
	scheme := strings.TrimPrefix(strings.ToLower(u.Scheme), prefix+"+")
	if scheme != "http" && scheme != "https" {
		return Options{}, nil, greyerr.Invalid("url", "%s runtime: scheme %q is not %s+http or %s+https", prefix, u.Scheme, prefix, prefix)
	}
	if u.Host == "" {
		return Options{}, nil, greyerr.Invalid("url", "%s runtime: the URL names no host (%s+http://host:port)", prefix, prefix)
	}
	base := &url.URL{Scheme: scheme, Host: u.Host, User: u.User, Path: strings.TrimRight(u.Path, "/")}
	o.Base = base
	q := u.Query()
	ext := url.Values{}
	for k, vs := range q {
		v := vs[len(vs)-1]
		bad := func(format string, args ...any) error {
			return greyerr.Invalid("url", "%s runtime: parameter %s: %s", prefix, k, fmt.Sprintf(format, args...))
		}
		switch k {
		case "model":
			for _, m := range vs {
				g, s, ok := strings.Cut(m, "=")
				if !ok || ai.ValidName("model", g) != nil || s == "" || strings.ContainsAny(s, "/?#") {
					return Options{}, nil, bad("%q is not grey-name=server-name", m)
				}
				o.Names[g] = s
			}
		case "versioned":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Options{}, nil, bad("%q is not true or false", v)
			}
			o.Versioned = b
		case "digest":
			switch v {
			case "require":
				o.RequireDigest = true
			case "report", "":
			default:
				return Options{}, nil, bad("%q is not require or report", v)
			}
		case "frameworks":
			for _, f := range list(v) {
				if !ai.Framework(f).Valid() {
					return Options{}, nil, bad("%q is not pytorch or tensorflow", f)
				}
				o.Frameworks = append(o.Frameworks, ai.Framework(f))
			}
		case "devices":
			for _, d := range list(v) {
				if d != "cpu" && !strings.HasPrefix(d, "cuda:") {
					return Options{}, nil, bad("%q is not cpu or cuda:N", d)
				}
				o.Devices = append(o.Devices, d)
			}
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return Options{}, nil, bad("%q is not a positive duration", v)
			}
			o.Timeout = d
		case "max_response_bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return Options{}, nil, bad("%q is not a positive number", v)
			}
			o.MaxResponseBytes = n
		case "token_file":
			o.TokenFile = v
		case "ca_file":
			if scheme != "https" {
				return Options{}, nil, bad("only for %s+https", prefix)
			}
			o.CAFile = v
		default:
			if !slices.Contains(extra, k) {
				known := append([]string{"model", "versioned", "digest", "frameworks", "devices", "timeout", "max_response_bytes", "ca_file", "token_file"}, extra...)
				return Options{}, nil, greyerr.Invalid("url", "%s runtime: unknown parameter %q (known: %s)", prefix, k, strings.Join(known, ", "))
			}
			ext[k] = vs
		}
	}
	if len(o.Frameworks) == 0 {
		o.Frameworks = []ai.Framework{ai.PyTorch, ai.TensorFlow}
	}
	if len(o.Devices) == 0 {
		o.Devices = []string{"cpu"}
	}
	if o.Timeout == 0 {
		o.Timeout = opts.Timeout
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return o, ext, nil
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Client calls a server.
type Client struct {
	o      Options
	hc     *http.Client
	prefix string
	token  string
}

// NewClient returns a client for o's server; prefix names the runtime in
// errors ("oip", "tfserving").
func NewClient(o Options, prefix string) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, greyerr.Wrap(greyerr.InvalidArgument, err, "%s runtime: read ca_file", prefix)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, greyerr.Invalid("url", "%s runtime: ca_file %s holds no PEM certificate", prefix, o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c := &Client{o: o, hc: &http.Client{Transport: tr}, prefix: prefix}
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, greyerr.Wrap(greyerr.InvalidArgument, err, "%s runtime: read token_file", prefix)
		}
		if c.token = strings.TrimSpace(string(b)); c.token == "" {
			return nil, greyerr.Invalid("url", "%s runtime: token_file %s is empty", prefix, o.TokenFile)
		}
	}
	return c, nil
}

// Server is the server's URL without credentials, for errors and proofs.
func (c *Client) Server() string { return c.o.Base.Redacted() }

// Options returns the client's options.
func (c *Client) Options() *Options { return &c.o }

// WithTimeout gives ctx the runtime's timeout when it has no deadline.
func (c *Client) WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.o.Timeout)
}

// Do sends a request (body marshalled as JSON when not nil) to path under
// the server's URL and returns the answer's status and body. A request
// that could not be sent or answered is an error: the context's error
// when ctx ended, else Unavailable. An answer past MaxResponseBytes is
// Internal.
func (c *Client) Do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var b []byte
	var h http.Header
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return 0, nil, fmt.Errorf("%s runtime: encode the request: %w", c.prefix, err)
		}
		h = http.Header{"Content-Type": {"application/json"}}
	}
	status, _, rb, err := c.DoBytes(ctx, method, path, b, h)
	return status, rb, err
}

// DoBytes is Do with the request's bytes and headers given (nil body: no
// body) and the answer's headers returned too.
func (c *Client) DoBytes(ctx context.Context, method, path string, body []byte, header http.Header) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := *c.o.Base
	u.Path += path // path holds names unescaped; String escapes them
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, greyerr.Wrap(greyerr.Internal, err, "%s runtime: build the request", c.prefix)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, nil, fmt.Errorf("%s runtime: %s %s: %w", c.prefix, method, path, ctx.Err())
		}
		return 0, nil, nil, greyerr.Wrap(greyerr.Unavailable, err, "%s runtime: %s %s at %s", c.prefix, method, path, c.Server())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, nil, fmt.Errorf("%s runtime: %s %s: %w", c.prefix, method, path, ctx.Err())
		}
		return 0, nil, nil, greyerr.Wrap(greyerr.Unavailable, err, "%s runtime: read the answer to %s %s", c.prefix, method, path)
	}
	if int64(len(b)) > c.o.MaxResponseBytes {
		return 0, nil, nil, greyerr.New(greyerr.Internal, "%s runtime: the answer to %s %s is past max_response_bytes (%d)", c.prefix, method, path, c.o.MaxResponseBytes)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// Message returns the server's error message from an answer body: the
// "error" field of a JSON object when there is one, else the body cut to
// 512 bytes.
func Message(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// InferError maps a failed inference's status to the port's codes: 400
// InvalidArgument (the inputs do not fit the model), 500 ai.ErrModel (the
// model raised), 404 Unavailable (the server lost the model: the work
// goes elsewhere), 408/429/502/503/504 Unavailable, 501 Unimplemented, any
// other Internal.
func (c *Client) InferError(status int, body []byte) error {
	msg := Message(body)
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return greyerr.Invalid("inputs", "%s runtime: the server refused the inputs: %s", c.prefix, msg)
	case http.StatusInternalServerError:
		return fmt.Errorf("%s runtime: %w: %s", c.prefix, ai.ErrModel, msg)
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return greyerr.New(greyerr.Unavailable, "%s runtime: the server answered %d: %s", c.prefix, status, msg)
	case http.StatusNotImplemented:
		return greyerr.New(greyerr.Unimplemented, "%s runtime: the server answered 501: %s", c.prefix, msg)
	}
	return greyerr.New(greyerr.Internal, "%s runtime: the server answered %d: %s", c.prefix, status, msg)
}

// LoadError maps a failed model check's status: 404 FailedPrecondition
// (the server does not have the model), 501 FailedPrecondition with a
// hint (the server does not serve versions), 408/429/5xx Unavailable, any
// other Internal.
func (c *Client) LoadError(status int, body []byte, name, version string) error {
	msg := Message(body)
	switch {
	case status == http.StatusNotFound:
		return greyerr.New(greyerr.FailedPrecondition, "%s runtime: the server at %s has no model %q version %q: %s", c.prefix, c.Server(), name, version, msg)
	case status == http.StatusNotImplemented:
		return greyerr.New(greyerr.FailedPrecondition, "%s runtime: the server does not serve model versions (add versioned=false to the runtime URL): %s", c.prefix, msg)
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return greyerr.New(greyerr.Unavailable, "%s runtime: the server answered %d: %s", c.prefix, status, msg)
	}
	return greyerr.New(greyerr.Internal, "%s runtime: the server answered %d: %s", c.prefix, status, msg)
}

// Malformed is the error of an answer the driver cannot read: Internal,
// whatever code err carries (a tensor error inside a server's answer is
// not the caller's invalid argument).
func (c *Client) Malformed(what string, err error) error {
	return &greyerr.Error{Code: greyerr.Internal, Message: fmt.Sprintf("%s runtime: the server's %s is malformed", c.prefix, what), Err: err}
}

// CloseIdle closes idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// Keys is the table of loaded models of a driver, with its closed state.
type Keys[M any] struct {
	mu     sync.RWMutex
	m      map[string]M
	closed bool
	prefix string
}

// NewKeys returns an empty table; prefix names the runtime in errors.
func NewKeys[M any](prefix string) *Keys[M] { return &Keys[M]{m: map[string]M{}, prefix: prefix} }

// ErrClosed is the error of a call on a closed driver.
func (k *Keys[M]) ErrClosed() error {
	return greyerr.New(greyerr.Unavailable, "%s runtime: closed", k.prefix)
}

// Get returns key's model: NotFound when none, Unavailable when closed.
func (k *Keys[M]) Get(key string) (M, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var zero M
	if k.closed {
		return zero, k.ErrClosed()
	}
	m, ok := k.m[key]
	if !ok {
		return zero, greyerr.New(greyerr.NotFound, "%s runtime: no model loaded under key %q", k.prefix, key)
	}
	return m, nil
}

// Lookup returns key's model and whether there is one, or an error when
// closed.
func (k *Keys[M]) Lookup(key string) (M, bool, error) {
	m, err := k.Get(key)
	if err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return m, false, nil
		}
		return m, false, err
	}
	return m, true, nil
}

// Put stores m under key unless a model is there, and returns the one
// stored.
func (k *Keys[M]) Put(key string, m M) (M, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		var zero M
		return zero, k.ErrClosed()
	}
	if old, ok := k.m[key]; ok {
		return old, nil
	}
	k.m[key] = m
	return m, nil
}

// Delete forgets key.
func (k *Keys[M]) Delete(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
}

// Close forgets every key; later calls are Unavailable. It reports
// whether the table was open.
func (k *Keys[M]) Close() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	was := !k.closed
	k.closed = true
	k.m = map[string]M{}
	return was
}

// Closed reports whether Close was called.
func (k *Keys[M]) Closed() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.closed
}

// CtxErr returns err as the context's error when ctx ended, else err.
func CtxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// Register registers open for each of schemes in r (a driver's http and
// https schemes).
func Register[D ai.Driver](r *ai.Registry, open func(*url.URL, ai.OpenOptions) (D, error), schemes ...string) error {
	o := ai.OpenerFunc(func(_ context.Context, u *url.URL, opts ai.OpenOptions) (ai.Driver, error) {
		return open(u, opts)
	})
	for _, s := range schemes {
		if err := r.Register(s, o); err != nil {
			return err
		}
	}
	return nil
}

// RuntimeInfo is the Info of a remote runtime called name: the frameworks
// the URL routes to it, at versions the protocol does not tell
// ("unknown"), and the URL's devices.
func (c *Client) RuntimeInfo(name, version string) ai.RuntimeInfo {
	fw := map[ai.Framework]string{}
	for _, f := range c.o.Frameworks {
		fw[f] = "unknown"
	}
	return ai.RuntimeInfo{Name: name, Version: version, Frameworks: fw, Devices: slices.Clone(c.o.Devices)}
}

// Placement checks that the URL routes spec's framework to this server
// and returns the device for spec: the one it asks for ("cuda": the
// first cuda:N), else the URL's first. Either refused is
// FailedPrecondition.
func (c *Client) Placement(spec ai.LoadSpec) (string, error) {
	if !slices.Contains(c.o.Frameworks, spec.Model.Framework) {
		return "", greyerr.New(greyerr.FailedPrecondition, "%s runtime: %s models are not routed to %s (frameworks=%v)", c.prefix, spec.Model.Framework, c.Server(), c.o.Frameworks)
	}
	want := spec.Device
	for _, dev := range c.o.Devices {
		if want == "" || dev == want || (want == "cuda" && strings.HasPrefix(dev, "cuda:")) {
			return dev, nil
		}
	}
	return "", greyerr.New(greyerr.FailedPrecondition, "%s runtime: no device %q (the URL names %s)", c.prefix, want, strings.Join(c.o.Devices, ", "))
}
