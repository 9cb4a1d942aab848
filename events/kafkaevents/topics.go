package kafkaevents

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topicMaker creates the topics the driver writes to (results, events,
// dead letters) the first time it writes to each, when create_topics is
// on. Production clusters often disable auto-creation; creating with
// kadm also sizes the topic from the settings rather than the broker's
// defaults.
type topicMaker struct {
	adm         *kadm.Client
	create      bool
	partitions  int32
	replication int16

	mu    sync.Mutex
	known map[string]bool
}

func newTopicMaker(adm *kadm.Client, c *config) *topicMaker {
	return &topicMaker{adm: adm, create: c.createTopics, partitions: c.partitions, replication: c.replication, known: map[string]bool{}}
}

// ensure creates those of names not known to exist. An existing topic is
// fine; any other failure is coded by errorOf.
func (m *topicMaker) ensure(ctx context.Context, names ...string) error {
	if !m.create {
		return nil
	}
	m.mu.Lock()
	var missing []string
	for _, n := range names {
		if !m.known[n] && !contains(missing, n) {
			missing = append(missing, n)
		}
	}
	m.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	resp, err := m.adm.CreateTopics(ctx, m.partitions, m.replication, nil, missing...)
	if err != nil {
		return errorOf(err, "kafka: create topics %v", missing)
	}
	var firstErr error
	var created []string
	m.mu.Lock()
	for _, n := range missing {
		r, ok := resp[n]
		switch {
		case ok && r.Err == nil:
			created = append(created, n)
			m.known[n] = true
		case ok && errors.Is(r.Err, kerr.TopicAlreadyExists):
			m.known[n] = true
		case ok && firstErr == nil:
			firstErr = errorOf(r.Err, "kafka: create topic %s", n)
		}
	}
	m.mu.Unlock()
	m.awaitLeaders(ctx, created)
	return firstErr
}

// awaitLeaders waits (a few seconds at most) until the brokers' metadata
// gives every topic in names a leader for each partition, so that the
// first write to a new topic does not wait for a metadata refresh.
func (m *topicMaker) awaitLeaders(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		details, err := m.adm.ListTopics(ctx, names...)
		ready := err == nil
		for _, n := range names {
			d, ok := details[n]
			if !ok || d.Err != nil || len(d.Partitions) == 0 {
				ready = false
				break
			}
			for _, p := range d.Partitions {
				if p.Leader < 0 || p.Err != nil {
					ready = false
				}
			}
		}
		if ready {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
