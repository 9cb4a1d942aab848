package rabbitevents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// maxReasonBytes bounds the grey-dlq-reason header.
const maxReasonBytes = 1024

// Source is the RabbitMQ source driver (events.SourceDriver).
type Source struct {
	set      settings
	prefetch int
	sess     *session

	// ctl serializes what changes consumers: setup on a new connection,
	// Pause and Resume.
	ctl sync.Mutex

	mu       sync.Mutex
	gen      uint64            // generation of the connection the fields below belong to (0: none)
	conn     *amqp.Connection  // current connection
	ch       *amqp.Channel     // consuming channel (acks go here)
	pub      *amqp.Channel     // confirm-mode channel for DeadLetter
	consumer map[string]string // tenant ("" for unrouted) -> consumer tag while consuming
	tenants  []string          // tenants with a queue: the settings' and those learnt since
	known    map[string]bool   // the same, as a set
	nextTag  int
	paused   map[string]bool
	ready    []*events.Message // fetched from the broker, not yet returned by Fetch
	held     map[string][]*events.Message
	inflight map[string]int64 // per tenant: delivered, not yet acknowledged
	closed   bool
	wake     chan struct{} // closed and replaced on every change

	// ackMu serializes settling and sending acks, so that a multiple ack
	// never covers a tag another call is about to ack alone.
	ackMu sync.Mutex
	// Delivery tags of a channel are 1, 2, 3...: every tag up to ackBase
	// is settled and acknowledged; tags holds those above it that were
	// received (false) or settled (true).
	ackBase uint64
	tags    map[uint64]bool
}

// handle is Message.Handle: the delivery tag on one connection.
type handle struct {
	src     *Source
	gen     uint64
	tag     uint64
	settled bool // acknowledged or dead-lettered (guarded by Source.mu)
}

var _ events.SourceDriver = (*Source)(nil)

// OpenSource returns a source for the broker at rawURL. It does not wait
// for the broker: the connection is made (and remade) in the background,
// and Fetch reports Unavailable while there is none.
func OpenSource(rawURL string, opts events.SourceOptions) (*Source, error) {
	set, err := parseSettings(opts.Settings, opts.Group)
	if err != nil {
		return nil, err
	}
	if err := checkScheme(rawURL, &set); err != nil {
		return nil, err
	}
	prefetch := opts.Prefetch
	if prefetch <= 0 {
		prefetch = DefaultPrefetch
	}
	if prefetch > 65535 {
		return nil, greyerr.Invalid("events.rabbitmq.prefetch", "prefetch %d: at most 65535", prefetch)
	}
	s := &Source{
		set:      set,
		prefetch: prefetch,
		sess:     newSession(rawURL, "grey-source", set.tls),
		consumer: map[string]string{},
		tenants:  append([]string(nil), set.tenants...),
		known:    map[string]bool{},
		paused:   map[string]bool{},
		held:     map[string][]*events.Message{},
		inflight: map[string]int64{},
		tags:     map[uint64]bool{},
		wake:     make(chan struct{}),
	}
	for _, t := range set.tenants {
		s.known[t] = true
	}
	s.sess.setup = s.setup
	s.sess.teardown = s.teardown
	s.sess.changed = s.signal
	s.sess.start()
	return s, nil
}

// signal wakes every Fetch waiting for a change. Callers hold no lock.
func (s *Source) signal() {
	s.mu.Lock()
	s.signalLocked()
	s.mu.Unlock()
}

func (s *Source) signalLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// queueArgs are the arguments of every task queue.
func (s *Source) queueArgs() amqp.Table {
	args := amqp.Table{
		amqp.QueueTypeArg:        s.set.queueType,
		"x-dead-letter-exchange": s.set.dlx,
	}
	switch s.set.queueType {
	case queueQuorum:
		if s.set.deliveryLimit > 0 {
			args["x-delivery-limit"] = s.set.deliveryLimit
		}
		// the broker's own dead-lettering (delivery limit reached) is
		// at-least-once only with reject-publish overflow
		args["x-dead-letter-strategy"] = "at-least-once"
		args[amqp.QueueOverflowArg] = amqp.QueueOverflowRejectPublish
	case queueClassic:
		if s.set.maxPriority > 0 {
			args["x-max-priority"] = s.set.maxPriority
		}
	}
	return args
}

// declareSource declares the source side's topology on ch.
func declareSource(ch *amqp.Channel, set *settings, tenants []string, queueArgs amqp.Table) error {
	dlqArgs := amqp.Table{amqp.QueueTypeArg: set.queueType}
	if err := ch.ExchangeDeclare(set.dlx, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", set.dlx, err)
	}
	if _, err := ch.QueueDeclare(set.dlq, true, false, false, false, dlqArgs); err != nil {
		return fmt.Errorf("declare queue %s: %w", set.dlq, err)
	}
	if err := ch.QueueBind(set.dlq, "#", set.dlx, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", set.dlq, err)
	}
	if err := ch.ExchangeDeclare(set.unroutedExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", set.unroutedExchange, err)
	}
	if err := ch.ExchangeDeclare(set.tasksExchange, amqp.ExchangeTopic, true, false, false, false,
		amqp.Table{"alternate-exchange": set.unroutedExchange}); err != nil {
		return fmt.Errorf("declare exchange %s: %w", set.tasksExchange, err)
	}
	uq := set.unroutedQueue()
	if _, err := ch.QueueDeclare(uq, true, false, false, false, queueArgs); err != nil {
		return fmt.Errorf("declare queue %s: %w", uq, err)
	}
	if err := ch.QueueBind(uq, "#", set.unroutedExchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", uq, err)
	}
	for _, t := range tenants {
		if err := declareTenant(ch, set, t, queueArgs); err != nil {
			return err
		}
	}
	return nil
}

// declareTenant declares tenant's queue and binds it with <tenant>.#.
func declareTenant(ch *amqp.Channel, set *settings, tenant string, queueArgs amqp.Table) error {
	q := set.tenantQueue(tenant)
	if _, err := ch.QueueDeclare(q, true, false, false, false, queueArgs); err != nil {
		return fmt.Errorf("declare queue %s: %w", q, err)
	}
	if err := ch.QueueBind(q, tenant+".#", set.tasksExchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", q, err)
	}
	return nil
}

// tenantList is a copy of the tenants with a queue.
func (s *Source) tenantList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tenants...)
}

// learn gives a tenant whose message the Consumer accepted from the
// unrouted queue its own queue: declared, bound and consumed from now on
// (and on every reconnection), so that it gets per-tenant pause and lag
// like the tenants the server named at open. Messages of tenants nobody
// accepted (dead-lettered as unknown) never get a queue.
func (s *Source) learn(tenant string) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.mu.Lock()
	conn := s.conn
	if s.known[tenant] || conn == nil || s.closed {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	if err := declareTenant(ch, &s.set, tenant, s.queueArgs()); err != nil {
		return // tried again with the tenant's next accepted message
	}
	s.mu.Lock()
	if !s.known[tenant] {
		s.known[tenant] = true
		s.tenants = append(s.tenants, tenant)
	}
	paused := s.paused[tenant]
	s.mu.Unlock()
	if !paused {
		_ = s.consumeLocked(tenant)
	}
}

// setup runs on every new connection: declare, open the channels, start
// the consumers of tenants not paused.
func (s *Source) setup(conn *amqp.Connection, gen uint64) error {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	decl, err := conn.Channel()
	if err != nil {
		return err
	}
	tenants := s.tenantList()
	if err := declareSource(decl, &s.set, tenants, s.queueArgs()); err != nil {
		return err
	}
	_ = decl.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	// per consumer: every tenant gets its own window
	if err := ch.Qos(s.prefetch, 0, false); err != nil {
		return fmt.Errorf("basic.qos: %w", err)
	}
	pub, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := pub.Confirm(false); err != nil {
		return fmt.Errorf("confirm.select: %w", err)
	}
	watchChannel(conn, ch)
	watchChannel(conn, pub)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("source closed")
	}
	s.gen, s.conn, s.ch, s.pub = gen, conn, ch, pub
	s.ackBase = 0
	clear(s.tags)
	clear(s.consumer)
	s.mu.Unlock()
	if err := s.consumeLocked(""); err != nil {
		return err
	}
	for _, t := range tenants {
		s.mu.Lock()
		p := s.paused[t]
		s.mu.Unlock()
		if p {
			continue
		}
		if err := s.consumeLocked(t); err != nil {
			return err
		}
	}
	return nil
}

// consumeLocked starts the consumer of tenant's queue ("" : the unrouted
// queue) on the current channel. The caller holds ctl.
func (s *Source) consumeLocked(tenant string) error {
	s.mu.Lock()
	ch, gen := s.ch, s.gen
	if ch == nil || s.consumer[tenant] != "" {
		s.mu.Unlock()
		return nil
	}
	s.nextTag++
	tag := "grey-" + tenant + "-" + strconv.FormatUint(gen, 10) + "-" + strconv.Itoa(s.nextTag)
	s.mu.Unlock()
	queue := s.set.unroutedQueue()
	if tenant != "" {
		queue = s.set.tenantQueue(tenant)
	}
	dels, err := ch.Consume(queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", queue, err)
	}
	s.mu.Lock()
	if s.gen == gen {
		s.consumer[tenant] = tag
	}
	s.mu.Unlock()
	go s.forward(dels, queue, tenant, gen)
	return nil
}

// forward moves one consumer's deliveries into the ready list until the
// consumer is cancelled or the channel closes.
func (s *Source) forward(dels <-chan amqp.Delivery, queue, tenant string, gen uint64) {
	for d := range dels {
		dl := delivery{
			Queue: queue, Tenant: tenant, RoutingKey: d.RoutingKey, Body: d.Body,
			ContentType: d.ContentType, MessageID: d.MessageId, Headers: d.Headers,
			Redelivered: d.Redelivered,
		}
		m := dl.toMessage()
		m.Handle = &handle{src: s, gen: gen, tag: d.DeliveryTag}
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			continue // the broker redelivers it on the new connection
		}
		s.inflight[m.Tenant]++
		s.tags[d.DeliveryTag] = false
		s.ready = append(s.ready, m)
		s.signalLocked()
		s.mu.Unlock()
	}
}

// teardown forgets what belonged to connection gen: its delivery tags are
// void, and the broker requeues those messages.
func (s *Source) teardown(gen uint64, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	s.gen, s.conn, s.ch, s.pub = 0, nil, nil, nil
	s.ackBase = 0
	clear(s.tags)
	clear(s.consumer)
	s.ready = nil
	clear(s.held)
	clear(s.inflight)
	s.signalLocked()
}

// Fetch implements events.SourceDriver. It waits for messages until ctx
// ends (then it returns ctx's error); while the broker cannot be reached
// it returns an Unavailable error (PermissionDenied for refused
// credentials).
func (s *Source) Fetch(ctx context.Context, max int) ([]*events.Message, error) {
	if max <= 0 {
		max = 1
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, greyerr.New(greyerr.FailedPrecondition, "rabbitmq source is closed")
		}
		var out []*events.Message
		keep := s.ready[:0]
		for _, m := range s.ready {
			switch {
			case s.paused[m.Tenant]:
				s.held[m.Tenant] = append(s.held[m.Tenant], m)
			case len(out) < max:
				out = append(out, m)
			default:
				keep = append(keep, m)
			}
		}
		clear(s.ready[len(keep):])
		s.ready = keep
		connected := s.gen != 0
		wake := s.wake
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		if !connected {
			if _, _, err := s.sess.current(); err != nil {
				return nil, coded(err, "rabbitmq source: broker not connected")
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// errStale says a message's connection closed after it was delivered.
var errStale = greyerr.New(greyerr.Unavailable, "rabbitmq: the message's connection closed; the broker delivers it again (same position)")

// settleLocked marks m settled and returns its handle when it belongs to
// the current connection and was not settled before; nil, nil for a
// message settled before (nothing to do); nil, errStale for a message of
// a closed connection. The caller holds mu.
func (s *Source) settleLocked(m *events.Message) (*handle, error) {
	h, ok := m.Handle.(*handle)
	switch {
	case !ok || h == nil || h.src != s:
		return nil, greyerr.New(greyerr.InvalidArgument, "rabbitmq: message %q was not fetched from this source", m.Position)
	case h.gen != s.gen || s.gen == 0:
		return nil, errStale
	case h.settled:
		return nil, nil
	}
	h.settled = true
	s.inflight[m.Tenant]--
	s.tags[h.tag] = true
	return h, nil
}

// advanceLocked moves ackBase over the settled tags that follow it. The
// caller holds mu.
func (s *Source) advanceLocked() {
	for s.tags[s.ackBase+1] {
		delete(s.tags, s.ackBase+1)
		s.ackBase++
	}
}

// Ack implements events.SourceDriver. When every delivery of the channel
// up to the batch's highest tag is settled (the usual case: the Consumer
// acknowledges what it fetched, in order), one basic.ack with multiple
// set acknowledges the batch; tags above a delivery still pending (a
// paused tenant's, a message being dead-lettered) are acknowledged one by
// one. A message whose connection closed since cannot be acknowledged
// (the broker requeued it; its redelivery has the same Position): Ack
// acknowledges the others and returns Unavailable.
func (s *Source) Ack(ctx context.Context, msgs []*events.Message) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	ch := s.ch
	tags := make([]uint64, 0, len(msgs))
	var firstErr error
	var learn []string
	unrouted := s.set.unroutedQueue()
	for _, m := range msgs {
		h, err := s.settleLocked(m)
		if h != nil {
			tags = append(tags, h.tag)
			if m.Source == unrouted && !s.known[m.Tenant] && task.ValidTenant(m.Tenant) && !slices.Contains(learn, m.Tenant) {
				learn = append(learn, m.Tenant)
			}
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	s.advanceLocked()
	base := s.ackBase
	s.mu.Unlock()
	var multi uint64 // the highest tag of the batch covered by ackBase
	for _, t := range tags {
		if t <= base && t > multi {
			multi = t
		}
	}
	if multi > 0 {
		if err := ch.Ack(multi, true); err != nil {
			return coded(err, "rabbitmq: ack")
		}
	}
	for _, t := range tags {
		if t > multi {
			if err := ch.Ack(t, false); err != nil {
				return coded(err, "rabbitmq: ack")
			}
		}
	}
	for _, t := range learn {
		go s.learn(t)
	}
	return firstErr
}

// Retry implements events.SourceDriver. The messages stay unacknowledged
// in the driver and come back from Fetch (a paused tenant's after
// Resume): a nack would count as a delivery towards the queue's delivery
// limit, and being refused by a quota is not the message's fault.
func (s *Source) Retry(ctx context.Context, msgs []*events.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var back []*events.Message
	for _, m := range msgs {
		h, ok := m.Handle.(*handle)
		if !ok || h == nil || h.src != s || h.settled || h.gen != s.gen || s.gen == 0 {
			continue
		}
		if s.paused[m.Tenant] {
			s.held[m.Tenant] = append(s.held[m.Tenant], m)
		} else {
			back = append(back, m)
		}
	}
	if len(back) > 0 {
		s.ready = append(back, s.ready...)
		s.signalLocked()
	}
	return nil
}

// DeadLetter implements events.SourceDriver: it publishes m to the
// dead-letter exchange with grey-dlq-reason, waits for the broker's
// confirm and acknowledges m. A message of a closed connection is not
// published (Unavailable: the broker redelivers it and it is judged
// again); one settled before is left alone.
func (s *Source) DeadLetter(ctx context.Context, m *events.Message, reason string) error {
	s.mu.Lock()
	h, ok := m.Handle.(*handle)
	switch {
	case !ok || h == nil || h.src != s:
		s.mu.Unlock()
		return greyerr.New(greyerr.InvalidArgument, "rabbitmq: message %q was not fetched from this source", m.Position)
	case h.gen != s.gen || s.gen == 0:
		s.mu.Unlock()
		return errStale
	case h.settled:
		s.mu.Unlock()
		return nil
	}
	pub := s.pub
	s.mu.Unlock()
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes]
	}
	headers := amqp.Table{}
	for k, v := range m.Headers {
		headers[k] = v
	}
	headers["grey-dlq-reason"] = reason
	headers["grey-tenant-id"] = m.Tenant
	headers["grey-routing-key"] = string(m.Key)
	headers["grey-source-queue"] = m.Source
	headers["grey-position"] = m.Position
	var conf *amqp.DeferredConfirmation
	err := s.sess.confirmed(ctx, h.gen, s.set.confirmTimeout, "dead-letter", func(ctx context.Context, _ func()) error {
		var err error
		conf, err = pub.PublishWithDeferredConfirmWithContext(ctx, s.set.dlx, string(m.Key), false, false, amqp.Publishing{
			Headers:      headers,
			ContentType:  m.ContentType,
			DeliveryMode: amqp.Persistent,
			Timestamp:    time.Now(),
			Body:         m.Value,
		})
		if err != nil {
			return coded(err, "rabbitmq: dead-letter to %s", s.set.dlx)
		}
		return nil
	}, func(ctx context.Context, _ func()) error {
		acked, err := conf.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !acked {
			return greyerr.New(greyerr.Unavailable, "rabbitmq: the broker did not confirm the dead-lettered message")
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	h, err = s.settleLocked(m)
	s.advanceLocked()
	ch := s.ch
	s.mu.Unlock()
	if h == nil {
		// dead-lettered but the connection closed before the ack: the
		// redelivery is dead-lettered again (grey-position tells copies)
		return err
	}
	if err := ch.Ack(h.tag, false); err != nil {
		return coded(err, "rabbitmq: ack dead-lettered message")
	}
	return nil
}

// Pause implements events.SourceDriver: it cancels the tenant's consumer;
// messages already delivered are held back until Resume.
func (s *Source) Pause(tenant string) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.mu.Lock()
	s.paused[tenant] = true
	tag, ch := s.consumer[tenant], s.ch
	if tenant != "" {
		delete(s.consumer, tenant)
	} else {
		tag = "" // the unrouted queue is shared: its messages are held back instead
	}
	s.mu.Unlock()
	if tag != "" && ch != nil {
		// an error means the channel is gone: the reconnection starts
		// no consumer for a paused tenant
		_ = ch.Cancel(tag, false)
	}
}

// Resume implements events.SourceDriver: held messages come back first,
// then the consumer starts again.
func (s *Source) Resume(tenant string) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.mu.Lock()
	delete(s.paused, tenant)
	if h := s.held[tenant]; len(h) > 0 {
		s.ready = append(h, s.ready...)
		delete(s.held, tenant)
	}
	s.signalLocked()
	s.mu.Unlock()
	for _, t := range s.tenantList() {
		if t == tenant {
			if err := s.consumeLocked(tenant); err != nil {
				// the channel failed: close the connection so that the
				// reconnection starts the consumer
				s.mu.Lock()
				conn := s.conn
				s.mu.Unlock()
				if conn != nil {
					_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
				}
			}
		}
	}
}

// Lag implements events.SourceDriver: per configured tenant, the ready
// messages of its queue (queue.declare passive) plus those delivered to
// this driver and not yet acknowledged.
func (s *Source) Lag(ctx context.Context) (map[string]int64, error) {
	conn, _, err := s.sess.wait(ctx, "source")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	inflight := make(map[string]int64, len(s.inflight))
	for k, v := range s.inflight {
		inflight[k] = v
	}
	s.mu.Unlock()
	tenants := s.tenantList()
	out := make(map[string]int64, len(tenants))
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	for _, t := range tenants {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ch == nil {
			c, err := conn.Channel()
			if err != nil {
				return nil, coded(err, "rabbitmq: open channel")
			}
			ch = c
		}
		q, err := ch.QueueDeclarePassive(s.set.tenantQueue(t), true, false, false, false, nil)
		if err != nil {
			ch = nil // a refused passive declare closes the channel
			return nil, coded(err, "rabbitmq: inspect queue %s", s.set.tenantQueue(t))
		}
		out[t] = int64(q.Messages) + inflight[t]
	}
	return out, nil
}

// As implements events.SourceDriver: **amqp091.Connection gets the
// current connection (nil while disconnected).
func (s *Source) As(i any) bool {
	p, ok := i.(**amqp.Connection)
	if !ok {
		return false
	}
	s.mu.Lock()
	*p = s.conn
	s.mu.Unlock()
	return true
}

// Close implements events.SourceDriver: it closes the connection, so the
// broker requeues every unacknowledged message for the next consumer.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.signalLocked()
	s.mu.Unlock()
	s.sess.stop()
	return nil
}
