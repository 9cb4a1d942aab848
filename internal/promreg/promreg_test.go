package promreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/internal/promreg"
)

// Into leaves the registered collector in the field: the first caller's
// own, and for a second caller the first one's, so both count together.
// A collector whose name is taken by another type is an error.
func TestInto(t *testing.T) {
	reg := prometheus.NewRegistry()
	newVec := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"l"})
	}
	a, b := newVec(), newVec()
	first := a
	if err := promreg.Into(reg, &a); err != nil || a != first {
		t.Fatalf("first Into: %v, same collector %v", err, a == first)
	}
	if err := promreg.Into(reg, &b); err != nil || b != first {
		t.Fatalf("second Into: %v, got the registered collector %v", err, b == first)
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_total", Help: "other"}, []string{"l"})
	before := g
	if err := promreg.Into(reg, &g); err == nil || g != before {
		t.Fatalf("Into of a conflicting collector: err %v, field changed %v", err, g != before)
	}
}
