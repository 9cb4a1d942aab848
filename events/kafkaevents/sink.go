package kafkaevents

import (
	"context"
	"errors"
	"net/url"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// Sink is the Kafka sink driver: an idempotent producer with acks=all
// writing results to grey.results.<tenant> and lifecycle events to
// grey.events, keyed by task id (so one task's events stay in one
// partition, in order).
//
// Without transactions, a Publish that returns nil has every event
// written once to the log; a Publish that fails, or a leader that dies
// before the relay records its cursor, makes the relay publish the batch
// again, so consumers see an event at least once and deduplicate by
// (task id, attempt). The idempotent producer removes the duplicates its
// own retries would make, not those of a second Publish.
//
// With transactions (transactional=true), each Publish is one Kafka
// transaction; a consumer reading with isolation.level=read_committed
// sees a batch's events only once it is committed, and never the events
// of an aborted attempt. A batch the relay publishes again after a
// committed Publish (the leader died before recording its cursor) is a
// second committed transaction: exactly once per Publish, not per event
// across leader changes; the relay's cursor keeps that window to the
// batches in flight when a leader dies. The transactional id is one per
// Grey cluster, so the new leader's sink fences the old one's.
type Sink struct {
	cfg    *config
	txn    bool
	admCl  *kgo.Client // the admin's own client: cl may be replaced
	adm    *kadm.Client
	topics *topicMaker
	opts   []kgo.Opt

	mu     sync.Mutex // guards cl and closed; serializes transactions
	cl     *kgo.Client
	closed bool
}

var _ events.SinkDriver = (*Sink)(nil)

// OpenSink opens a sink on the brokers of u. Like OpenSource it does not
// contact the brokers; Publish fails with Unavailable while none answers.
func OpenSink(ctx context.Context, u *url.URL, opts events.SinkOptions) (*Sink, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := parseConfig(u, opts.Settings)
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, txn: opts.Transactional || cfg.transactional}
	s.opts = append(append([]kgo.Opt(nil), cfg.common...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(cfg.compression...),
		kgo.RecordDeliveryTimeout(cfg.deliveryTimeout),
		kgo.ProducerLinger(cfg.linger),
	)
	if s.txn {
		s.opts = append(s.opts, kgo.TransactionalID(cfg.txnID))
	}
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.InvalidArgument, err, "kafka: sink client")
	}
	s.cl = cl
	if s.admCl, err = kgo.NewClient(cfg.common...); err != nil {
		cl.Close()
		return nil, greyerr.Wrap(greyerr.InvalidArgument, err, "kafka: admin client")
	}
	s.adm = kadm.NewClient(s.admCl)
	s.topics = newTopicMaker(s.adm, cfg)
	return s, nil
}

// Transactional reports whether the sink publishes in transactions.
func (s *Sink) Transactional() bool { return s.txn }

// Topic returns the topic an event goes to.
func (s *Sink) Topic(ev events.Event) (string, error) {
	switch ev.Kind {
	case events.Result:
		if ev.Tenant == "" {
			return "", greyerr.Invalid("tenant", "kafka: a result event needs a tenant")
		}
		return s.cfg.resultsPrefix + ev.Tenant, nil
	case events.Lifecycle:
		return s.cfg.eventsTopic, nil
	}
	return "", greyerr.Invalid("kind", "kafka: unknown event kind %q", ev.Kind)
}

// Publish writes evs and returns once the brokers acknowledged every one
// (acks=all), in one transaction when the sink is transactional.
func (s *Sink) Publish(ctx context.Context, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(evs))
	var topics []string
	for _, ev := range evs {
		topic, err := s.Topic(ev)
		if err != nil {
			return err
		}
		if !contains(topics, topic) {
			topics = append(topics, topic)
		}
		recs = append(recs, recordOf(topic, ev))
	}
	if err := s.topics.ensure(ctx, topics...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return greyerr.New(greyerr.FailedPrecondition, "kafka: sink is closed")
	}
	if s.cl == nil {
		cl, err := kgo.NewClient(s.opts...)
		if err != nil {
			return greyerr.Wrap(greyerr.Internal, err, "kafka: sink client")
		}
		s.cl = cl
	}
	if !s.txn {
		return errorOf(s.cl.ProduceSync(ctx, recs...).FirstErr(), "kafka: publish %d events", len(recs))
	}
	return s.publishTxn(ctx, recs)
}

// publishTxn publishes recs in one transaction. The caller holds s.mu.
func (s *Sink) publishTxn(ctx context.Context, recs []*kgo.Record) error {
	if err := s.cl.BeginTransaction(); err != nil {
		return s.txnFailed(err, false, "begin transaction")
	}
	if err := s.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return s.txnFailed(err, true, "publish in transaction")
	}
	// Ending a transaction is not cut short by the caller's context: a
	// cancelled EndTransaction leaves its outcome unknown.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.deliveryTimeout)
	defer cancel()
	if err := s.cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
		return s.txnFailed(err, true, "commit transaction")
	}
	return nil
}

// txnFailed aborts the open transaction (open: one was begun) and codes
// err. When the abort fails too, or the producer was fenced (another
// leader's sink took the transactional id), the client is closed and a
// new one, with a new producer epoch, is made on the next Publish.
func (s *Sink) txnFailed(err error, open bool, what string) error {
	reset := errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
	if open && !reset {
		actx, cancel := context.WithTimeout(context.Background(), s.cfg.deliveryTimeout)
		defer cancel()
		if aerr := s.cl.AbortBufferedRecords(actx); aerr != nil {
			reset = true
		} else if aerr := s.cl.EndTransaction(actx, kgo.TryAbort); aerr != nil {
			reset = true
		}
	}
	if reset || !open {
		s.cl.Close()
		s.cl = nil
	}
	return errorOf(err, "kafka: %s", what)
}

// recordOf builds the record of ev: keyed by task id, headers in name
// order.
func recordOf(topic string, ev events.Event) *kgo.Record {
	r := &kgo.Record{Topic: topic, Key: []byte(ev.Key), Value: ev.Value}
	if len(ev.Headers) > 0 {
		keys := make([]string, 0, len(ev.Headers))
		for k := range ev.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		r.Headers = make([]kgo.RecordHeader, 0, len(keys))
		for _, k := range keys {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(ev.Headers[k])})
		}
	}
	return r
}

// As reaches the native clients: *kgo.Client (the producer) and
// *kadm.Client.
func (s *Sink) As(i any) bool {
	switch p := i.(type) {
	case **kgo.Client:
		s.mu.Lock()
		*p = s.cl
		s.mu.Unlock()
	case **kadm.Client:
		*p = s.adm
	default:
		return false
	}
	return true
}

// Close flushes nothing (Publish waits for its records) and closes the
// producer; an open transaction is aborted by the broker after its
// timeout.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cl != nil {
		s.cl.Close()
		s.cl = nil
	}
	s.admCl.Close()
	return nil
}
