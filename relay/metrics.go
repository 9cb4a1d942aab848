package relay

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/state"
)

// metrics are one sink's families, named after the sink:
// grey_<sink>_lag_tasks, grey_<sink>_lag_seconds,
// grey_<sink>_delivered_tasks_total, grey_<sink>_delivery_errors_total and
// grey_<sink>_delivery_seconds.
type metrics struct {
	delivered prometheus.Counter
	errors    *prometheus.CounterVec
	seconds   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, sink string, status func() state.SinkStatus) (*metrics, error) {
	p := "grey_" + sink + "_"
	m := &metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: p + "delivered_tasks_total",
			Help: "Finished tasks this node delivered to the " + sink + " (a re-delivered task counts again)."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: p + "delivery_errors_total",
			Help: "Failed deliveries to the " + sink + " and failed acknowledgements, by step."}, []string{"step"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: p + "delivery_seconds",
			Help: "Time to write one batch to the " + sink + " and acknowledge it.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}),
	}
	if reg == nil {
		return m, nil
	}
	lagTasks := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: p + "lag_tasks",
		Help: "Finished tasks in the Raft state that the " + sink + " has not acknowledged."},
		func() float64 { return float64(status().Backlog) })
	lagSeconds := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: p + "lag_seconds",
		Help: "Seconds since the oldest finished task the " + sink + " has not acknowledged finished (0 when caught up)."},
		func() float64 {
			st := status()
			if st.Backlog == 0 || st.Oldest.IsZero() {
				return 0
			}
			return max(0, time.Since(st.Oldest).Seconds())
		})
	for _, c := range []prometheus.Collector{m.delivered, m.errors, m.seconds, lagTasks, lagSeconds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

// Families lists the metric families a sink named sink exports, sorted.
func Families(sink string) []string {
	p := "grey_" + sink + "_"
	return []string{p + "delivered_tasks_total", p + "delivery_errors_total", p + "delivery_seconds", p + "lag_seconds", p + "lag_tasks"}
}
