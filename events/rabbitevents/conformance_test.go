package rabbitevents_test

import (
	"testing"

	"github.com/grey-distributed/grey/events/eventstest"
)

func TestConformanceQuorum(t *testing.T) {
	e := newEnv(t, nil)
	eventstest.RunSource(t, e.sourceHarness())
	eventstest.RunSink(t, e.sinkHarness(t))
}

func TestConformanceClassic(t *testing.T) {
	e := newEnv(t, map[string]string{"queue_type": "classic"})
	eventstest.RunSource(t, e.sourceHarness())
}
