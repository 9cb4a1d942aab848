package quorumarchive

import (
	"errors"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/internal/promreg"
)

// metrics are the quorum archive's families; name is their archive label.
type metrics struct {
	name           string
	divergent      *prometheus.GaugeVec
	repairs        *prometheus.CounterVec
	repairsDropped *prometheus.CounterVec
	replicaErrors  *prometheus.CounterVec
}

func newMetrics(name string) *metrics {
	return &metrics{
		name: name,
		divergent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "grey_archive_quorum_divergent_records",
			Help: "Records the last anti-entropy pass found missing or older on at least one replica (before it repaired them).",
		}, []string{"archive"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_archive_quorum_repairs_total",
			Help: "Records written to (or deleted from) a replica to repair it, by replica and by what found the difference (read or anti_entropy).",
		}, []string{"archive", "replica", "source"}),
		repairsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_archive_quorum_repairs_dropped_total",
			Help: "Read repairs not queued because the repair queue was full (anti-entropy repairs them later).",
		}, []string{"archive"}),
		replicaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grey_archive_quorum_replica_errors_total",
			Help: "Failed calls to a replica, by replica and operation.",
		}, []string{"archive", "replica", "operation"}),
	}
}

// RegisterMetrics registers the driver's metrics with reg, labelled
// archive=name; call it once, before the driver is used (counts made
// before are not carried over). Drivers registering with one reg share the
// families.
func (d *Driver) RegisterMetrics(reg prometheus.Registerer, name string) error {
	m := newMetrics(name)
	if err := errors.Join(promreg.Into(reg, &m.divergent), promreg.Into(reg, &m.repairs), promreg.Into(reg, &m.repairsDropped), promreg.Into(reg, &m.replicaErrors)); err != nil {
		return err
	}
	d.m.Store(m)
	return nil
}
