package telemetry

import (
	"github.com/grey-distributed/grey/internal/httpstatus"
	"net/http"
	"strconv"
	"time"
)

// Unmatched is the route label of a request no pattern matched (route
// returned "").
const Unmatched = "unmatched"

// HTTP wraps next (typically the API's ServeMux) and records
// grey_http_requests_total{route,code} and
// grey_http_request_duration_seconds{route}. route names the request's
// route after next has served it and must return a bounded value, the
// matched pattern, never the raw path: with a Go 1.22+ ServeMux pass
//
//	func(r *http.Request) string { return r.Pattern }
//
// (the mux sets Pattern on the same *http.Request it was given). "" counts
// as "unmatched"; past 256 distinct routes, or for a malformed value, the
// route counts as "other". The wrapped ResponseWriter keeps Flush and
// Unwrap, so SSE and http.ResponseController work through it.
func (m *Metrics) HTTP(route func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := httpstatus.Wrap(w)
		defer func() {
			p := recover()
			code := sw.Code()
			switch {
			case p != nil && code == 0:
				code = http.StatusInternalServerError
			case code == 0:
				code = http.StatusOK
			}
			m.observeHTTP(route(r), code, time.Since(start))
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

func (m *Metrics) observeHTTP(route string, code int, d time.Duration) {
	if route == "" {
		route = Unmatched
	} else {
		route = m.routes.value(route)
	}
	if code < 100 || code > 999 {
		code = 0
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}
