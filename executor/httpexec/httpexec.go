// Package httpexec is Grey's http task kind: it sends the task's body to a
// URL (POST by default) and records the response as the result.
//
// Payload (see docs/EXECUTORS.md):
//
//	{"url": "https://api.example.com/hook",   // required; http or https
//	 "method": "POST",                         // default POST
//	 "headers": {"Authorization": "Bearer …"}, // request headers
//	 "body": <any JSON>}                        // sent as JSON (Content-Type application/json unless set)
//
// Only allowed hosts may be called: executors.http.allow_hosts for every
// tenant plus executors.http.tenant_allow_hosts[tenant] (to move to the
// tenant quota later). Private, loopback, link-local and other non-public
// addresses are refused unless executors.http.allow_private; the check is
// made on the address actually dialled (after DNS, on every connection), so
// DNS rebinding cannot get around it, and redirects are followed only to
// allowed hosts. Proxies from the environment are not used.
//
// Outcomes: 2xx → result (a JSON body as is, any other body as a JSON
// string, an empty body as null); 5xx, connection errors and timeouts are
// retried; 4xx fails at once (code http_4xx; 408 and 429 are retried);
// refused hosts (host_not_allowed) and addresses (ssrf_blocked) fail at
// once.
package httpexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/grey-distributed/grey/worker"
)

// Kind is the task kind this executor runs.
const Kind = "http"

// Error codes recorded in task.Error.Code for failed http attempts (the
// pool records "timeout" itself when an attempt outlives its timeout).
const (
	// CodeInvalidPayload: the payload is not an http payload (permanent).
	CodeInvalidPayload = "invalid_payload"
	// CodeHostNotAllowed: the URL's host (or a redirect's) is not on the
	// tenant's allowlist (permanent).
	CodeHostNotAllowed = "host_not_allowed"
	// CodeSSRFBlocked: the host resolved to a private, loopback,
	// link-local or otherwise non-public address (permanent).
	CodeSSRFBlocked = "ssrf_blocked"
	// Code4xx: the server answered 4xx (permanent, except 408 and 429).
	Code4xx = "http_4xx"
	// Code5xx: the server answered 5xx (retryable).
	Code5xx = "http_5xx"
	// CodeRedirect: a redirect could not be followed (permanent).
	CodeRedirect = "http_redirect"
	// CodeConnection: the request failed in transport (retryable).
	CodeConnection = "http_connection"
	// CodeResponseTooLarge: the body exceeded max_response_bytes (permanent).
	CodeResponseTooLarge = "response_too_large"
)

// Defaults of Config.
const (
	DefaultMaxResponseBytes = 1 << 20
	maxRedirects            = 5
	// errorBodyKeep is how much of an error response goes in the message.
	errorBodyKeep = 512
)

// Config configures an Executor.
type Config struct {
	// AllowHosts are allowed for every tenant: "host", "*.domain" (any
	// subdomain, not the domain itself), each optionally with ":port".
	AllowHosts []string
	// TenantAllowHosts are allowed for one tenant, on top of AllowHosts.
	TenantAllowHosts map[string][]string
	// AllowPrivate permits non-public addresses (tests, closed networks).
	AllowPrivate bool
	// MaxResponseBytes bounds a response body (default 1 MiB).
	MaxResponseBytes int64
	// UserAgent is sent unless the task sets one (default "grey-http/1").
	UserAgent string
}

// Executor runs http tasks; it is a worker.Handler.
type Executor struct {
	cfg    Config
	global []hostPattern
	tenant map[string][]hostPattern
	client *http.Client
}

var _ worker.Handler = (*Executor)(nil)

// hostPattern is one allowlist entry.
type hostPattern struct {
	host     string // lower case, no "*." prefix
	wildcard bool   // "*.host": subdomains of host
	port     string // "" = any port
}

func (p hostPattern) matches(host, port string) bool {
	if p.port != "" && p.port != port {
		return false
	}
	if p.wildcard {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}

func parsePatterns(list []string) ([]hostPattern, error) {
	var out []hostPattern
	for _, h := range list {
		p := hostPattern{}
		s := strings.ToLower(strings.TrimSpace(h))
		if s == "" || strings.Contains(s, "/") || strings.ContainsAny(s, "?#@ ") {
			return nil, fmt.Errorf("http: allow host %q must be a host such as api.example.com, *.example.com or api.example.com:8443", h)
		}
		if hp, port, err := net.SplitHostPort(s); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("http: allow host %q: bad port", h)
			}
			s, p.port = hp, port
		}
		if strings.HasPrefix(s, "*.") {
			s, p.wildcard = s[2:], true
		}
		if s == "" || strings.Contains(s, "*") {
			return nil, fmt.Errorf("http: allow host %q: a wildcard is only allowed as a leading \"*.\"", h)
		}
		p.host = strings.Trim(s, "[]")
		out = append(out, p)
	}
	return out, nil
}

// New returns an executor.
func New(cfg Config) (*Executor, error) {
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "grey-http/1"
	}
	g, err := parsePatterns(cfg.AllowHosts)
	if err != nil {
		return nil, err
	}
	e := &Executor{cfg: cfg, global: g, tenant: map[string][]hostPattern{}}
	for t, hosts := range cfg.TenantAllowHosts {
		if e.tenant[t], err = parsePatterns(hosts); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t, err)
		}
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		dialer.Control = refusePrivate
	}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would dial for us, past the address check
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	e.client = &http.Client{Transport: tr, CheckRedirect: e.checkRedirect}
	return e, nil
}

// Close drops idle connections.
func (e *Executor) Close() { e.client.CloseIdleConnections() }

// Payload is the payload of an http task.
type Payload struct {
	// URL to call (http or https).
	URL string `json:"url"`
	// Method is the HTTP method (default POST).
	Method string `json:"method,omitempty"`
	// Headers are request headers.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is sent JSON-encoded; absent: no body.
	Body json.RawMessage `json:"body,omitempty"`
}

type tenantKey struct{}

// allowed reports whether tenant may call host:port.
func (e *Executor) allowed(tenant, host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range e.global {
		if p.matches(host, port) {
			return true
		}
	}
	for _, p := range e.tenant[tenant] {
		if p.matches(host, port) {
			return true
		}
	}
	return false
}

// checkURL refuses URLs the task may not call.
func (e *Executor) checkURL(tenant string, u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return permanent(CodeInvalidPayload, "url must be http or https, got %q", u.Scheme)
	}
	if u.User != nil {
		return permanent(CodeInvalidPayload, "url must not carry credentials (use an Authorization header)")
	}
	host := u.Hostname()
	if host == "" {
		return permanent(CodeInvalidPayload, "url %q has no host", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if !e.allowed(tenant, host, port) {
		return permanent(CodeHostNotAllowed, "host %s is not on tenant %s's allowlist (executors.http.allow_hosts, executors.http.tenant_allow_hosts)", net.JoinHostPort(host, port), tenant)
	}
	return nil
}

func (e *Executor) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return permanent(CodeRedirect, "stopped after %d redirects", maxRedirects)
	}
	tenant, _ := req.Context().Value(tenantKey{}).(string)
	if err := e.checkURL(tenant, req.URL); err != nil {
		return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
	}
	return nil
}

// Work implements worker.Handler.
func (e *Executor) Work(ctx context.Context, j *worker.Job) (any, error) {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(j.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, permanentWrap(CodeInvalidPayload, err, "bad payload (want {\"url\":…,\"method\":…,\"headers\":{…},\"body\":…})")
	}
	if p.URL == "" {
		return nil, permanent(CodeInvalidPayload, "bad payload: url is required")
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, permanentWrap(CodeInvalidPayload, err, "bad payload: url")
	}
	if err := e.checkURL(j.TenantID, u); err != nil {
		return nil, err
	}
	method := strings.ToUpper(p.Method)
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if len(p.Body) > 0 {
		body = bytes.NewReader(p.Body)
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, tenantKey{}, j.TenantID), method, u.String(), body)
	if err != nil {
		return nil, permanentWrap(CodeInvalidPayload, err, "bad payload")
	}
	req.Header.Set("User-Agent", e.cfg.UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range p.Headers {
		if strings.EqualFold(k, "Host") {
			return nil, permanent(CodeInvalidPayload, "bad payload: the Host header cannot be set")
		}
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Grey-Task-Id", j.TaskID)
	req.Header.Set("X-Grey-Attempt", strconv.Itoa(j.Attempt))
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, transportError(ctx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, e.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, transportError(ctx, err)
	}
	if int64(len(b)) > e.cfg.MaxResponseBytes {
		return nil, permanent(CodeResponseTooLarge, "%s %s: response body exceeds %d bytes (executors.http.max_response_bytes)", method, u.Redacted(), e.cfg.MaxResponseBytes)
	}
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299:
		return result(b)
	case s >= 500:
		return nil, retryable(Code5xx, nil, "%s %s: HTTP %d%s", method, u.Redacted(), s, snippet(b))
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests:
		return nil, retryable(Code4xx, nil, "%s %s: HTTP %d%s", method, u.Redacted(), s, snippet(b))
	case s >= 400:
		return nil, permanent(Code4xx, "%s %s: HTTP %d%s", method, u.Redacted(), s, snippet(b))
	default:
		return nil, permanent(CodeRedirect, "%s %s: HTTP %d without a usable redirect", method, u.Redacted(), s)
	}
}

// transportError classifies a failed round trip.
func transportError(ctx context.Context, err error) error {
	var ce worker.CodedError
	if errors.As(err, &ce) {
		// Our own refusal (address check or redirect policy), wrapped by
		// net/http: keep its code and permanence.
		msg := err.Error()
		if worker.IsPermanent(err) {
			return worker.Permanent(worker.Fail(ce.Code(), msg, nil))
		}
		return worker.Fail(ce.Code(), msg, nil)
	}
	if ctx.Err() != nil {
		// Timeout or cancellation: the pool classifies (timeout, retried).
		return fmt.Errorf("http: %w", err)
	}
	return retryable(CodeConnection, err, "request failed")
}

// result turns a 2xx body into the task result.
func result(b []byte) (any, error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, nil
	}
	if json.Valid(t) {
		return json.RawMessage(t), nil
	}
	s, err := json.Marshal(string(b))
	if err != nil {
		return nil, permanentWrap(CodeResponseTooLarge, err, "encode response")
	}
	return json.RawMessage(s), nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > errorBodyKeep {
		s = s[:errorBodyKeep]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return ": " + s
}

// refusePrivate is the dialer's Control function: it runs for every
// connection with the address about to be dialled (DNS already resolved),
// and refuses non-public ones.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return permanent(CodeSSRFBlocked, "refusing to dial %q: %v", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return permanent(CodeSSRFBlocked, "refusing to dial %q: not an IP address", address)
	}
	if why := nonPublic(ip); why != "" {
		return permanent(CodeSSRFBlocked, "refusing to connect to %s: a %s address (executors.http.allow_private is false)", ip, why)
	}
	return nil
}

// blocked are ranges that are not public unicast, beyond what netip's
// predicates cover.
var blocked = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
}

// nonPublic says why ip is not a public unicast address ("" if it is).
func nonPublic(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	if ip.Is6() {
		// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address:
		// judge that one.
		b := ip.As16()
		if netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
			return nonPublic(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
		if netip.MustParsePrefix("2002::/16").Contains(ip) {
			return nonPublic(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	for _, r := range blocked {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	return ""
}

func permanent(code, format string, args ...any) error {
	return worker.Permanent(worker.Fail(code, "http: "+fmt.Sprintf(format, args...), nil))
}

func permanentWrap(code string, err error, format string, args ...any) error {
	return worker.Permanent(worker.Fail(code, "http: "+fmt.Sprintf(format, args...), err))
}

func retryable(code string, err error, format string, args ...any) error {
	return worker.Fail(code, "http: "+fmt.Sprintf(format, args...), err)
}

// CodeOf returns the code of an error returned by Work ("" if it has none).
func CodeOf(err error) string {
	var ce worker.CodedError
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return ""
}

// ValidatePayload implements worker.PayloadValidator: the payload's shape
// and an absolute http(s) URL; the allowlist is the running node's to
// apply (a worker node may allow more hosts).
func (e *Executor) ValidatePayload(payload json.RawMessage) error {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("http: bad payload (want {\"url\":…,\"method\":…,\"headers\":{…},\"body\":…}): %w", err)
	}
	if p.URL == "" {
		return errors.New("http: bad payload: url is required")
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return fmt.Errorf("http: bad payload: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("http: bad payload: url %q is not an absolute http or https URL", p.URL)
	}
	for k := range p.Headers {
		if strings.EqualFold(k, "Host") {
			return errors.New("http: bad payload: the Host header cannot be set")
		}
	}
	return nil
}
