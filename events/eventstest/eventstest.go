// Package eventstest is the conformance suite of the events port: the
// behaviours every source and sink driver must have, checked through the
// driver interfaces. memevents runs it on every go test; the Kafka and
// RabbitMQ drivers run it against real brokers (GREY_TEST_KAFKA_URL,
// GREY_TEST_RABBITMQ_URL).
//
// The suite makes its tenant ids unique per run (Tenant), so a persistent
// broker can run it repeatedly without cleaning up; a driver may see
// other tenants' messages, which the suite leaves alone.
package eventstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
)

// Produced is a message the suite asks a harness to publish.
type Produced struct {
	// Key is the message key (may be nil).
	Key []byte
	// Value is the body.
	Value []byte
	// Headers are the message's headers (may be nil).
	Headers map[string]string
	// ContentType is the body's media type ("" : none, JSON).
	ContentType string
}

// DeadLetter is a message a harness read back from a tenant's dead-letter
// destination.
type DeadLetter struct {
	// Value is the body.
	Value []byte
	// Headers are its headers; the suite wants the grey-dlq-reason header
	// there (or Reason set).
	Headers map[string]string
	// Reason is the dead-letter reason where the broker carries it
	// elsewhere than in Headers ("" : read Headers).
	Reason string
}

// SourceHarness is what a source driver's test hands the suite.
type SourceHarness struct {
	// Open returns a source driver that consumes (at least) the task
	// sources of tenants. Drivers opened within one test must form one
	// consumer group (one queue set), so that a second driver resumes
	// where a closed first one stopped. The suite opens before it
	// produces, and closes every driver it opens; Open must not.
	Open func(t testing.TB, tenants []string) events.SourceDriver
	// Produce publishes a message to tenant's task source (Kafka: topic
	// grey.tasks.<tenant>; AMQP: exchange grey.tasks, routing key
	// <tenant>.<kind>). It waits until the broker has it.
	Produce func(t testing.TB, tenant string, p Produced)
	// DeadLetters returns what tenant's dead-letter destination holds,
	// waiting until it holds at least want (or Timeout passed).
	DeadLetters func(t testing.TB, tenant string, want int) []DeadLetter
	// Unreachable returns a source driver for a broker that does not
	// answer (a closed port), or the error of opening one, which must
	// then be Unavailable. Nil skips the test.
	Unreachable func(t testing.TB) (events.SourceDriver, error)
	// Timeout bounds how long the suite waits for a message to arrive
	// (0: 10 s; brokers with consumer-group rebalances need more).
	Timeout time.Duration
	// Quiet is how long the suite watches for a message that must not
	// come (0: 500 ms).
	Quiet time.Duration
	// NoLag says the broker cannot tell the lag (Lag returns an empty
	// map or Unimplemented).
	NoLag bool
}

// SinkHarness is what a sink driver's test hands the suite.
type SinkHarness struct {
	// Open returns a sink driver. The suite closes it; Open must not.
	Open func(t testing.TB) events.SinkDriver
	// Read returns the events of kind published for tenant (results:
	// the tenant's results destination; lifecycle: the cluster's events
	// destination filtered by the grey-tenant-id header), waiting until
	// there are at least want (or Timeout passed). Each returned event
	// has Kind, Tenant (from where it was read), Key, Value and Headers
	// as the broker delivered them.
	Read func(t testing.TB, kind events.EventKind, tenant string, want int) []events.Event
	// Unreachable returns a sink driver for a broker that does not
	// answer, or the error of opening one (then Unavailable). Nil skips
	// the test.
	Unreachable func(t testing.TB) (events.SinkDriver, error)
	// Timeout bounds waits (0: 10 s).
	Timeout time.Duration
}

// Tenant returns a tenant id unique to this run, starting with prefix.
func Tenant(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func (h SourceHarness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 10 * time.Second
}

func (h SourceHarness) quiet() time.Duration {
	if h.Quiet > 0 {
		return h.Quiet
	}
	return 500 * time.Millisecond
}

func (h SinkHarness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 10 * time.Second
}

// ctx returns a context for one step of a test.
func ctx(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}
