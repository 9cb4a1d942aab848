// Package promreg registers Prometheus collectors for components that may
// be built more than once against one registry (several buckets, stores or
// relays of a process share their families).
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the collector of the same type
// already registered under its name; any other refusal is returned.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, err
	}
	return c, nil
}

// Into is Register for a collector held in a field: it registers *c with
// reg and leaves in *c the collector that serves (c's own, or the one of
// the same type already registered). Several calls join with errors.Join.
func Into[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	got, err := Register(reg, *c)
	if err != nil {
		return err
	}
	*c = got
	return nil
}
