package events_test

import (
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/events"
)

// recorder is a Registerer that records the family names registered.
type recorder struct {
	prometheus.Registerer
	names []string
}

var fqName = regexp.MustCompile(`fqName: "([a-z_]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	c.Describe(ch)
	close(ch)
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return r.Registerer.Register(c)
}

// Families names exactly what NewMetrics registers, and a second
// NewMetrics on the same registry reuses the families.
func TestFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := &recorder{Registerer: reg}
	if _, err := events.NewMetrics(rec); err != nil {
		t.Fatal(err)
	}
	sort.Strings(rec.names)
	if !slices.Equal(rec.names, events.Families()) {
		t.Errorf("NewMetrics registers %v, Families lists %v", rec.names, events.Families())
	}
	if _, err := events.NewMetrics(reg); err != nil {
		t.Fatalf("second NewMetrics on one registry: %v", err)
	}
}
