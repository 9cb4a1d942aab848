package httpstatus

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := Wrap(rec)
	if Wrap(w) != w {
		t.Fatal("wrapping a Writer again made a second one")
	}
	if w.Code() != 0 {
		t.Fatalf("code before writing = %d", w.Code())
	}
	w.WriteHeader(http.StatusEarlyHints) // informational: not the status
	w.WriteHeader(http.StatusTeapot)
	_, _ = w.Write([]byte("x"))
	if w.Code() != http.StatusTeapot {
		t.Fatalf("code = %d, want 418", w.Code())
	}
	f := Wrap(httptest.NewRecorder())
	f.Flush()
	if f.Code() != http.StatusOK || !f.ResponseWriter.(*httptest.ResponseRecorder).Flushed {
		t.Fatalf("flush: code %d, flushed %v", f.Code(), f.ResponseWriter.(*httptest.ResponseRecorder).Flushed)
	}
	if http.NewResponseController(f).Flush() != nil {
		t.Fatal("ResponseController cannot flush through the Writer")
	}
}
