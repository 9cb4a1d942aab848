// Package httpstatus records the status code a handler writes, for the
// HTTP middleware of metrics and tracing. One Writer serves every
// middleware layer of a request: Wrap returns a writer that already is one.
package httpstatus

import "net/http"

// Writer is an http.ResponseWriter that remembers the status code. It keeps
// Flush (server-sent events) and Unwrap (http.ResponseController).
type Writer struct {
	http.ResponseWriter
	code int
}

// Wrap returns w as a *Writer: w itself when it is one already (an outer
// middleware wrapped it), else a new Writer around it.
func Wrap(w http.ResponseWriter) *Writer {
	if sw, ok := w.(*Writer); ok {
		return sw
	}
	return &Writer{ResponseWriter: w}
}

// Code is the status written so far: 0 when nothing was written.
func (w *Writer) Code() int { return w.code }

// WriteHeader implements http.ResponseWriter; informational (1xx) codes
// are passed on but not remembered.
func (w *Writer) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter (a body without a header is 200).
func (w *Writer) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher through the underlying writers.
func (w *Writer) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
