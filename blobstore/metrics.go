package blobstore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/internal/promreg"
)

// metrics are the blob port's Prometheus families, labelled by bucket name
// and operation.
type metrics struct {
	ops     *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	bytes   *prometheus.CounterVec
	retries *prometheus.CounterVec
}

// newMetrics creates the families and registers them with reg (nil: not
// registered). Buckets sharing a registerer share the families.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_blob_operations_total",
			Help: "Blob store operations by bucket, operation and result code (ok or a Grey error code).",
		}, []string{"bucket", "op", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grey_blob_operation_seconds",
			Help:    "Blob store operation latency, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"bucket", "op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_blob_bytes_total",
			Help: "Bytes written (put, upload) and read (get, read) through the blob store.",
		}, []string{"bucket", "op"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_blob_retries_total",
			Help: "Transient blob store failures that were retried.",
		}, []string{"bucket", "op"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.ops, err = promreg.Register(reg, m.ops)
	if err != nil {
		return nil, err
	}
	if m.seconds, err = promreg.Register(reg, m.seconds); err != nil {
		return nil, err
	}
	if m.bytes, err = promreg.Register(reg, m.bytes); err != nil {
		return nil, err
	}
	if m.retries, err = promreg.Register(reg, m.retries); err != nil {
		return nil, err
	}
	return m, nil
}
