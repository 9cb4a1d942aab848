package inference

import (
	"errors"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/ai/batch"
	"github.com/grey-distributed/grey/internal/promreg"
)

// metrics are the grey_inference_* families.
type metrics struct {
	requests  *prometheus.CounterVec
	batchSize *prometheus.HistogramVec
	delay     *prometheus.HistogramVec
	load      *prometheus.HistogramVec
	hits      prometheus.Counter
	misses    prometheus.Counter
	warm      prometheus.GaugeFunc
}

// newMetrics creates the families and registers them with reg (nil: not
// registered). warm is read at scrape.
func newMetrics(reg prometheus.Registerer, warm func() float64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_inference_requests_total",
			Help: "Inference task attempts run on this node, by model (name:version, \"\" when it did not resolve) and outcome (ok or the task error code).",
		}, []string{"model", "outcome"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grey_inference_batch_size",
			Help:    "Rows per runtime call (the dynamic batch size), by runtime.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}, []string{"runtime"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grey_inference_queue_delay_seconds",
			Help:    "Time an inference request waited for its batch before the runtime call started, by runtime.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, []string{"runtime"}),
		load: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grey_inference_model_load_seconds",
			Help:    "Time to load a model into a runtime (the artifact already local), by runtime and framework.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 9),
		}, []string{"runtime", "framework"}),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "grey_inference_cache_hits_total",
			Help: "Inference attempts whose model artifact was in the node's model cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "grey_inference_cache_misses_total",
			Help: "Inference attempts that fetched their model artifact from the registry.",
		}),
		warm: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "grey_inference_warm_models",
			Help: "Models loaded in this node's runtimes.",
		}, warm),
	}
	if reg == nil {
		return m, nil
	}
	if err := errors.Join(promreg.Into(reg, &m.requests), promreg.Into(reg, &m.batchSize), promreg.Into(reg, &m.delay), promreg.Into(reg, &m.load), promreg.Into(reg, &m.hits), promreg.Into(reg, &m.misses), promreg.Into(reg, &m.warm)); err != nil {
		return nil, err
	}
	return m, nil
}

// observeBatch records a runtime call of the batcher.
func (m *metrics) observeBatch(s batch.Stats) {
	m.batchSize.WithLabelValues(s.Runtime).Observe(float64(s.Rows))
	d := m.delay.WithLabelValues(s.Runtime)
	for _, w := range s.Waited {
		d.Observe(w.Seconds())
	}
}
