package api

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// ForwardedHeader marks a request a follower forwarded to the leader; a
// server that receives one and is not the leader answers 503 rather than
// forward it again.
const ForwardedHeader = "X-Grey-Forwarded-By"

// ForwardedNodeHeader carries, on a forwarded request, the node identity
// (certs.Identity URI) of the client certificate the follower verified, so
// that the leader can act for a worker node that reached a follower. The
// follower always replaces what a caller sent; the leader believes it only
// from a peer with a server certificate (auth/mtlsauth).
const ForwardedNodeHeader = "X-Grey-Forwarded-Node"

// forwarder sends requests a follower cannot serve to the leader.
type forwarder struct {
	mu      sync.Mutex
	proxies map[string]*httputil.ReverseProxy
}

// local reports whether r is served here whatever the leadership: health,
// readiness, the spec, this node's own facts, and stale reads.
func local(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/api/v1/openapi.yaml", "/api/v1/cluster/self":
		return true
	}
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Query().Get("consistency") == "stale"
}

// forward wraps next: on a follower, writes and (by default linearizable)
// reads go to the leader through a reverse proxy, so clients never need to
// know who leads. Streams (watch, long polls) flow through unbuffered.
func (s *Server) forward(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if local(r) {
			next.ServeHTTP(w, r)
			return
		}
		if s.eng.IsLeader() {
			// A new leader serves nothing until it has applied every
			// entry of earlier terms: its replica could miss acknowledged
			// writes.
			if ok, why := s.eng.Ready(); !ok {
				s.writeError(w, r, &greyerr.Error{Code: greyerr.Unavailable, Message: why, RetryAfter: time.Second})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if v := r.URL.Query().Get("consistency"); v != "" && v != "stale" && v != "default" && v != "linearizable" {
			s.writeError(w, r, greyerr.Invalid("consistency", "must be default, linearizable or stale, got %q", v))
			return
		}
		leader := s.eng.LeaderAPI()
		if leader == "" && r.Method == http.MethodGet && (r.URL.Path == "/api/v1/cluster" || r.URL.Path == "/api/v1/cluster/nodes") {
			// No leader: the local view is the only one there is.
			next.ServeHTTP(w, r)
			return
		}
		if leader == "" || r.Header.Get(ForwardedHeader) != "" {
			s.writeError(w, r, &greyerr.Error{Code: greyerr.Unavailable, Message: "no leader to forward to (election in progress)", RetryAfter: time.Second})
			return
		}
		p, err := s.fwd.proxy(leader, s)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		r.Header.Set(ForwardedHeader, s.opts.NodeID)
		r.Header.Del(ForwardedNodeHeader)
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			if id, ok := certs.IdentityOf(r.TLS.VerifiedChains[0][0]); ok {
				r.Header.Set(ForwardedNodeHeader, id.String())
			}
		}
		if trace.SpanContextFromContext(r.Context()).IsValid() {
			// The leader's server span becomes a child of this one.
			tracing.Propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
		}
		p.ServeHTTP(w, r)
	})
}

func (f *forwarder) proxy(leader string, s *Server) (*httputil.ReverseProxy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.proxies[leader]; p != nil {
		return p, nil
	}
	u, err := url.Parse(strings.TrimRight(leader, "/"))
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "leader address %q", leader)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1
	// An unreachable (partitioned) old leader must not hold requests for
	// long: connections fail fast and the client tries another server.
	p.Transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     s.opts.PeerTLS,
	}
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if certs.IsRefusal(err) {
			// The leader refused this node's certificate (or this node
			// the leader's) during the handshake: nothing was applied.
			s.writeError(w, r, &greyerr.Error{Code: greyerr.Unavailable, Message: "TLS to leader " + leader + " refused (node certificates from another CA?)", Err: err, RetryAfter: time.Second})
			return
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" || r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.writeError(w, r, &greyerr.Error{Code: greyerr.Unavailable, Message: "leader " + leader + " unreachable", Err: err, RetryAfter: time.Second})
			return
		}
		// The leader may have received the request: its outcome is
		// unknown, and a blind retry could apply it twice.
		s.writeError(w, r, &greyerr.Error{Code: greyerr.DeadlineExceeded, Message: "lost the leader " + leader + " mid-request; the outcome is unknown (retry with an idempotency key)", Err: err})
	}
	if f.proxies == nil {
		f.proxies = make(map[string]*httputil.ReverseProxy)
	}
	f.proxies[leader] = p
	return p, nil
}
