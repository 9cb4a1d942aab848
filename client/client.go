package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	gojson "github.com/goccy/go-json"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// DefaultUserAgent is the User-Agent sent unless WithUserAgent sets another.
const DefaultUserAgent = "grey-go-client/1"

// Header names of the HTTP contract.
const (
	// TenantHeader carries the tenant in development mode.
	TenantHeader = "X-Grey-Tenant"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// Client talks to a Grey cluster over HTTP. It is safe for concurrent use;
// create one per tenant and reuse it.
type Client struct {
	servers   []*url.URL
	tenant    string
	token     string
	apiKey    bool               // token is an API key
	tokens    oauth2.TokenSource // when set, the bearer token of each request
	userAgent string
	hc        *http.Client
	// inlineLimit: Submit uploads payloads over it (inlineSet: configured).
	inlineLimit int
	inlineSet   bool
	// preferred is the index of the server that answered last.
	preferred atomic.Int32
	// waitPoll is the timeout asked of one wait long poll.
	waitPoll time.Duration
	// watchIdle is how long a watch stream may stay silent before the client
	// assumes the connection is dead and reconnects.
	watchIdle time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithTenant sets the tenant sent in X-Grey-Tenant. Without it the header is
// not sent and the server uses its default tenant ("default").
func WithTenant(tenant string) Option { return func(c *Client) { c.tenant = tenant } }

// WithToken sets a bearer token sent as "Authorization: Bearer <token>"
// (see auth.go for the other credentials).
func WithToken(token string) Option {
	return func(c *Client) { c.token, c.apiKey, c.tokens = token, false, nil }
}

// WithHTTPClient sets the HTTP client used for all requests. It must not set
// a Timeout shorter than the long polls (wait, lease) and must set none for
// Watch streams; use contexts to bound calls instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header (default DefaultUserAgent).
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for servers, a comma-separated list of base URLs such
// as "http://10.0.0.1:8080,http://10.0.0.2:8080" (a missing scheme means
// http). A base URL may carry a path prefix, which is kept.
func New(servers string, opts ...Option) (*Client, error) {
	c := &Client{
		userAgent: DefaultUserAgent,
		waitPoll:  30 * time.Second,
		watchIdle: 60 * time.Second,
	}
	for _, s := range strings.Split(servers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "://") {
			s = "http://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, greyerr.Invalid("servers", "%q is not a URL: %v", s, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, greyerr.Invalid("servers", "%q must be an http:// or https:// URL with a host", s)
		}
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath, u.RawQuery, u.Fragment = "", "", ""
		c.servers = append(c.servers, u)
	}
	if len(c.servers) == 0 {
		return nil, greyerr.Invalid("servers", "no server URL given")
	}
	for _, o := range opts {
		o(c)
	}
	if err := c.checkAuth(); err != nil {
		return nil, err
	}
	if c.tenant != "" && !task.ValidTenant(c.tenant) {
		return nil, greyerr.Invalid("tenant", "%q is not a valid tenant (lower-case letters, digits, '-' and '_'; at most 63)", c.tenant)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: defaultTransport()}
	}
	return c, nil
}

// defaultTransport is http.DefaultTransport with more idle connections per
// host, since a client typically talks to one or a few servers.
func defaultTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}

// Tenant returns the tenant the client acts for ("default" when none was set).
func (c *Client) Tenant() string {
	if c.tenant == "" {
		return "default"
	}
	return c.tenant
}

// Servers returns the server base URLs, in failover order.
func (c *Client) Servers() []string {
	out := make([]string, len(c.servers))
	for i, u := range c.servers {
		out[i] = u.String()
	}
	return out
}

// request is one API call, independent of the server it goes to.
type request struct {
	method string
	path   string // escaped; starts with "/"
	query  url.Values
	body   []byte // nil: no body
	accept string
	// tenant, when set, acts for this tenant instead of the client's (a
	// worker fetching a task's model as the task's tenant).
	tenant string
}

// send sends r to the preferred server, failing over to the others (see the
// package doc), and returns the first response that is not a 503. The caller
// closes the body. When every server failed it returns the last 503 as an
// error, or an Unavailable error wrapping the last transport error.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	n := len(c.servers)
	start := int(c.preferred.Load())
	var lastErr error
	for i := range n {
		idx := (start + i) % n
		req, err := c.newRequest(ctx, c.servers[idx], r)
		if err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = &greyerr.Error{
				Code:    greyerr.Unavailable,
				Message: fmt.Sprintf("%s %s: %s did not answer", r.method, r.path, c.servers[idx].Host),
				Err:     err,
			}
			if !canFailOver(r.method, err) {
				return nil, lastErr
			}
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			lastErr = decodeError(resp)
			continue
		}
		if idx != start {
			c.preferred.Store(int32(idx))
		}
		return resp, nil
	}
	return nil, lastErr
}

func (c *Client) newRequest(ctx context.Context, base *url.URL, r *request) (*http.Request, error) {
	u := *base
	// r.path is escaped (ids go through url.PathEscape): keep its escapes,
	// so that an escaped '/' stays inside its segment.
	p, err := url.PathUnescape(r.path)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.InvalidArgument, err, "%s %s: bad path", r.method, r.path)
	}
	u.Path = base.Path + p
	u.RawPath = base.EscapedPath() + r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.InvalidArgument, err, "%s %s: bad request", r.method, r.path)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.userAgent)
	if r.tenant != "" {
		req.Header.Set(TenantHeader, r.tenant)
	} else if c.tenant != "" {
		req.Header.Set(TenantHeader, c.tenant)
	}
	if err := c.setAuth(req); err != nil {
		return nil, err
	}
	return req, nil
}

// canFailOver reports whether a request that failed with the transport error
// err may be sent to another server: always for GET and DELETE, and for other
// methods only when no connection was made (so the server saw nothing).
func canFailOver(method string, err error) bool {
	if method == http.MethodGet || method == http.MethodDelete || method == http.MethodHead {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// do sends a JSON request and decodes a 2xx JSON response into out (unless
// out is nil). Non-2xx responses become *greyerr.Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.doAs(ctx, "", method, path, query, in, out)
}

// doAs is do acting for tenant ("" = the client's tenant).
func (c *Client) doAs(ctx context.Context, tenant, method, path string, query url.Values, in, out any) error {
	r := &request{method: method, path: path, query: query, tenant: tenant}
	if in != nil {
		// goccy/go-json: encoding/json's bytes for less CPU (workers
		// report and lease through here).
		b, err := gojson.Marshal(in)
		if err != nil {
			return greyerr.Wrap(greyerr.InvalidArgument, err, "%s %s: encode request", method, path)
		}
		r.body = b
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := gojson.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return greyerr.Wrap(greyerr.Internal, err, "%s %s: decode %d response", method, path, resp.StatusCode)
	}
	return nil
}

// decodeError reads an error response (and closes its body) into a
// *greyerr.Error. A body that is not a Grey error keeps the status's code and
// quotes the start of the body.
func decodeError(resp *http.Response) *greyerr.Error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &greyerr.Error{}
	if err := json.Unmarshal(b, e); err != nil || e.Code == "" {
		e = &greyerr.Error{Code: greyerr.FromHTTPStatus(resp.StatusCode)}
		msg := strings.TrimSpace(string(b))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e.Message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, msg)
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// It returns 0 when the header is absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 1<<32)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// transient reports whether err is worth retrying after a pause: the server
// (or every server) is unavailable or asked the caller to slow down.
func transient(err error) bool {
	switch greyerr.CodeOf(err) {
	case greyerr.Unavailable, greyerr.ResourceExhausted, greyerr.DeadlineExceeded:
		return true
	}
	return false
}

// backoff computes pauses between retries of transient errors.
type backoff struct {
	next time.Duration
}

const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

// delay returns the pause before the next retry after err: the server's
// Retry-After when it sent one (at most 30s), otherwise an exponentially
// growing delay from 100ms to 5s.
func (b *backoff) delay(err error) time.Duration {
	var ge *greyerr.Error
	if errors.As(err, &ge) && ge.RetryAfter > 0 {
		return min(ge.RetryAfter, 30*time.Second)
	}
	if b.next == 0 {
		b.next = backoffMin
	}
	d := b.next
	b.next = min(2*b.next, backoffMax)
	return d
}

func (b *backoff) reset() { b.next = 0 }

// sleep waits d or until ctx ends, returning ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// taskPath returns the path of a task, or an error for an empty id.
func taskPath(id task.ID, suffix string) (string, error) {
	if id == "" {
		return "", greyerr.Invalid("id", "a task id is required")
	}
	return "/api/v1/tasks/" + url.PathEscape(id) + suffix, nil
}
