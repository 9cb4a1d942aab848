package telemetry

import (
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
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			code := sw.code
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

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher (server-sent events).
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
