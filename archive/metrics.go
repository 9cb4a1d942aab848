package archive

import (
	"errors"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/internal/promreg"
)

// metrics are the archive port's Prometheus families, labelled by store
// name, driver (the URL scheme) and operation.
type metrics struct {
	ops     *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	retries *prometheus.CounterVec
	records *prometheus.CounterVec
}

// newMetrics creates the families and registers them with reg (nil: not
// registered). Stores sharing a registerer share the families.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_archive_operations_total",
			Help: "Archive operations by store, driver, operation and result code (ok or a Grey error code).",
		}, []string{"store", "driver", "op", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grey_archive_operation_seconds",
			Help:    "Archive operation latency, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"store", "driver", "op"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_archive_retries_total",
			Help: "Transient archive failures that were retried.",
		}, []string{"store", "driver", "op"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_archive_records_written_total",
			Help: "Task records written to the archive (a re-delivered task counts again).",
		}, []string{"store", "driver"}),
	}
	if reg == nil {
		return m, nil
	}
	if err := errors.Join(promreg.Into(reg, &m.ops), promreg.Into(reg, &m.seconds), promreg.Into(reg, &m.retries), promreg.Into(reg, &m.records)); err != nil {
		return nil, err
	}
	return m, nil
}
