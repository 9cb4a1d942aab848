package blobstore

import (
	"errors"
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
	if err := errors.Join(promreg.Into(reg, &m.ops), promreg.Into(reg, &m.seconds), promreg.Into(reg, &m.bytes), promreg.Into(reg, &m.retries)); err != nil {
		return nil, err
	}
	return m, nil
}
