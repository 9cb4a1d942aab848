// Package memevents is the in-memory event broker (mem://), the reference
// driver that runs the conformance suite (eventstest) on every go test and
// serves tests of code built on the events port.
//
// A Broker holds, per tenant, an ordered task topic (grey.tasks.<tenant>),
// its dead-letter list (grey.dlq.<tenant>) and the events published to it
// (results per tenant, lifecycle events for the cluster). Every source
// opened on a Broker is a member of one consumer group: a message is
// delivered to one source at a time and stays there until it is
// acknowledged, dead-lettered or given back (Retry, Close). Positions are
// "mem:grey.tasks.<tenant>/<offset>", the same on every redelivery.
// Nothing survives the process. As reaches nothing.
//
// Hooks for tests: Produce writes a message, DeadLetters and Published
// read what landed, SetUnavailable makes every driver fail as an
// unreachable broker would.
package memevents

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"sort"
	"strconv"
	"sync"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of the in-memory broker.
const Scheme = "mem"

// Register registers the mem:// driver in r, opening sources and sinks on
// b (the URL's host, path and query are ignored).
func Register(r *events.Registry, b *Broker) error {
	return r.Register(Scheme, Opener(b))
}

// Opener returns an opener of sources and sinks on b, for tests that
// register the in-memory broker under another scheme (kafka, amqp) to
// run a server's configured event streams without a broker.
func Opener(b *Broker) events.Opener {
	return events.OpenerFuncs{
		Source: func(ctx context.Context, _ *url.URL, _ events.SourceOptions) (events.SourceDriver, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return b.OpenSource()
		},
		Sink: func(ctx context.Context, _ *url.URL, _ events.SinkOptions) (events.SinkDriver, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return b.OpenSink()
		},
	}
}

// Message is a message to Produce.
type Message struct {
	// Key is the message key.
	Key []byte
	// Value is the body.
	Value []byte
	// Headers are the message's headers.
	Headers map[string]string
	// ContentType is the body's media type ("": JSON).
	ContentType string
}

// DeadLetter is a message in a tenant's dead-letter list.
type DeadLetter struct {
	// Message is the message as it was consumed.
	Message events.Message
	// Reason is the grey-dlq-reason header.
	Reason string
}

// Broker is an in-memory broker. It is safe for concurrent use.
type Broker struct {
	mu          sync.Mutex
	topics      map[string]*topic // by tenant
	dlq         map[string][]DeadLetter
	results     map[string][]events.Event
	lifecycle   []events.Event
	unavailable error
	changed     chan struct{} // closed and replaced on every change
	nextSource  int
	// counts are the events published, by kind and tenant (kept also
	// when discard leaves the events themselves out).
	counts  map[countKey]int
	discard bool
}

// countKey is a kind of event of a tenant.
type countKey struct {
	kind   events.EventKind
	tenant string
}

// topic is one tenant's task messages in order.
type topic struct {
	msgs []*entry
}

// entry is one stored message.
type entry struct {
	m      Message
	offset int
	done   bool // acknowledged or dead-lettered
	owner  int  // the source it is delivered to (0: none)
	count  int  // deliveries
}

// New returns an empty broker.
func New() *Broker {
	return &Broker{topics: map[string]*topic{}, dlq: map[string][]DeadLetter{}, results: map[string][]events.Event{}, changed: make(chan struct{}),
		counts: map[countKey]int{}}
}

// DiscardPublished makes the broker count the events its sinks publish
// (Count) without keeping them (Published returns none of them), as a
// broker in another process would: a benchmark of the sink's cost then
// leaves out the test broker's own storage and its garbage collection.
func (b *Broker) DiscardPublished() {
	b.mu.Lock()
	b.discard = true
	b.mu.Unlock()
}

// SetUnavailable makes every driver method fail, while err is not nil,
// with an Unavailable error wrapping err (a Fetch waiting for messages
// returns it at once); SetUnavailable(nil) makes the broker answer again,
// with its messages intact.
func (b *Broker) SetUnavailable(err error) {
	b.mu.Lock()
	b.unavailable = err
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *Broker) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *Broker) checkLocked(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.unavailable != nil {
		return &greyerr.Error{Code: greyerr.Unavailable, Message: "memevents: the broker is unavailable", Err: b.unavailable}
	}
	return nil
}

// Produce appends a message to tenant's task topic and returns its
// position. It fails only while the broker is unavailable.
func (b *Broker) Produce(tenant string, m Message) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkLocked(context.Background()); err != nil {
		return "", err
	}
	t := b.topics[tenant]
	if t == nil {
		t = &topic{}
		b.topics[tenant] = t
	}
	m.Value = append([]byte(nil), m.Value...)
	m.Key = append([]byte(nil), m.Key...)
	m.Headers = maps.Clone(m.Headers)
	e := &entry{m: m, offset: len(t.msgs)}
	t.msgs = append(t.msgs, e)
	b.notifyLocked()
	return position(tenant, e.offset), nil
}

func position(tenant string, offset int) string {
	return "mem:grey.tasks." + tenant + "/" + strconv.Itoa(offset)
}

// DeadLetters returns tenant's dead-letter list, oldest first.
func (b *Broker) DeadLetters(tenant string) []DeadLetter {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]DeadLetter(nil), b.dlq[tenant]...)
}

// Published returns the events of kind published for tenant, oldest
// first (lifecycle events are filtered by their Tenant).
func (b *Broker) Published(kind events.EventKind, tenant string) []events.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	if kind == events.Result {
		return append([]events.Event(nil), b.results[tenant]...)
	}
	var out []events.Event
	for _, e := range b.lifecycle {
		if e.Tenant == tenant {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many events of kind were published for tenant,
// without copying them.
func (b *Broker) Count(kind events.EventKind, tenant string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[countKey{kind, tenant}]
}

// Pending returns the messages of tenant neither acknowledged nor
// dead-lettered.
func (b *Broker) Pending(tenant string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	if t := b.topics[tenant]; t != nil {
		for _, e := range t.msgs {
			if !e.done {
				n++
			}
		}
	}
	return n
}

// OpenSource returns a new member of the broker's consumer group.
func (b *Broker) OpenSource() (*Source, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkLocked(context.Background()); err != nil {
		return nil, err
	}
	b.nextSource++
	return &Source{b: b, id: b.nextSource, paused: map[string]bool{}}, nil
}

// OpenSink returns a sink publishing into the broker.
func (b *Broker) OpenSink() (*Sink, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkLocked(context.Background()); err != nil {
		return nil, err
	}
	return &Sink{b: b}, nil
}

// Source is a source driver on a Broker.
type Source struct {
	b      *Broker
	id     int
	paused map[string]bool // guarded by b.mu
	closed bool            // guarded by b.mu
}

var _ events.SourceDriver = (*Source)(nil)

type handle struct {
	tenant string
	e      *entry
}

func (s *Source) check(ctx context.Context) error {
	if s.closed {
		return greyerr.New(greyerr.FailedPrecondition, "memevents: the source is closed")
	}
	return s.b.checkLocked(ctx)
}

// Fetch implements events.SourceDriver: it takes up to max available
// messages, tenants in name order, each tenant's in offset order.
func (s *Source) Fetch(ctx context.Context, max int) ([]*events.Message, error) {
	if max <= 0 {
		max = 1
	}
	for {
		s.b.mu.Lock()
		if err := s.check(ctx); err != nil {
			s.b.mu.Unlock()
			return nil, err
		}
		var out []*events.Message
		tenants := make([]string, 0, len(s.b.topics))
		for t := range s.b.topics {
			tenants = append(tenants, t)
		}
		sort.Strings(tenants)
		for _, tn := range tenants {
			if s.paused[tn] {
				continue
			}
			for _, e := range s.b.topics[tn].msgs {
				if len(out) >= max {
					break
				}
				if e.done || e.owner != 0 {
					continue
				}
				e.owner = s.id
				e.count++
				out = append(out, &events.Message{
					Source:      "grey.tasks." + tn,
					Tenant:      tn,
					Key:         append([]byte(nil), e.m.Key...),
					Value:       append([]byte(nil), e.m.Value...),
					Headers:     maps.Clone(e.m.Headers),
					ContentType: e.m.ContentType,
					Position:    position(tn, e.offset),
					Attempt:     e.count,
					Handle:      handle{tn, e},
				})
			}
		}
		wait := s.b.changed
		s.b.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait:
		}
	}
}

// entries returns the entries of msgs that this broker handed out.
func (s *Source) entries(msgs []*events.Message) ([]handle, error) {
	out := make([]handle, 0, len(msgs))
	for _, m := range msgs {
		h, ok := m.Handle.(handle)
		if !ok || s.b.topics[h.tenant] == nil {
			return nil, greyerr.Invalid("messages", "memevents: message %q was not fetched from this broker", m.Position)
		}
		out = append(out, h)
	}
	return out, nil
}

// Ack implements events.SourceDriver.
func (s *Source) Ack(ctx context.Context, msgs []*events.Message) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	hs, err := s.entries(msgs)
	if err != nil {
		return err
	}
	for _, h := range hs {
		h.e.done, h.e.owner = true, 0
	}
	s.b.notifyLocked()
	return nil
}

// Retry implements events.SourceDriver.
func (s *Source) Retry(ctx context.Context, msgs []*events.Message) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	hs, err := s.entries(msgs)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if !h.e.done && h.e.owner == s.id {
			h.e.owner = 0
		}
	}
	s.b.notifyLocked()
	return nil
}

// DeadLetter implements events.SourceDriver.
func (s *Source) DeadLetter(ctx context.Context, m *events.Message, reason string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	hs, err := s.entries([]*events.Message{m})
	if err != nil {
		return err
	}
	h := hs[0]
	if h.e.done {
		return nil
	}
	cp := *m
	cp.Headers = maps.Clone(m.Headers)
	if cp.Headers == nil {
		cp.Headers = map[string]string{}
	}
	cp.Headers[events.HeaderReason] = reason
	cp.Handle = nil
	s.b.dlq[h.tenant] = append(s.b.dlq[h.tenant], DeadLetter{Message: cp, Reason: reason})
	h.e.done, h.e.owner = true, 0
	s.b.notifyLocked()
	return nil
}

// Pause implements events.SourceDriver.
func (s *Source) Pause(tenant string) {
	s.b.mu.Lock()
	s.paused[tenant] = true
	s.b.mu.Unlock()
}

// Resume implements events.SourceDriver.
func (s *Source) Resume(tenant string) {
	s.b.mu.Lock()
	delete(s.paused, tenant)
	s.b.notifyLocked()
	s.b.mu.Unlock()
}

// Lag implements events.SourceDriver: per tenant with messages, those
// neither acknowledged nor dead-lettered.
func (s *Source) Lag(ctx context.Context) (map[string]int64, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for tn, t := range s.b.topics {
		var n int64
		for _, e := range t.msgs {
			if !e.done {
				n++
			}
		}
		out[tn] = n
	}
	return out, nil
}

// As implements events.SourceDriver; it reaches nothing.
func (s *Source) As(any) bool { return false }

// Close implements events.SourceDriver: the messages delivered to s and
// not acknowledged become available to the group's other members.
func (s *Source) Close() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, t := range s.b.topics {
		for _, e := range t.msgs {
			if e.owner == s.id {
				e.owner = 0
			}
		}
	}
	s.b.notifyLocked()
	return nil
}

// Sink is a sink driver on a Broker.
type Sink struct {
	b      *Broker
	closed bool // guarded by b.mu
}

var _ events.SinkDriver = (*Sink)(nil)

// Publish implements events.SinkDriver: all events or none.
func (k *Sink) Publish(ctx context.Context, evs []events.Event) error {
	k.b.mu.Lock()
	defer k.b.mu.Unlock()
	if k.closed {
		return greyerr.New(greyerr.FailedPrecondition, "memevents: the sink is closed")
	}
	if err := k.b.checkLocked(ctx); err != nil {
		return err
	}
	for i, e := range evs {
		if e.Kind != events.Result && e.Kind != events.Lifecycle {
			return greyerr.Invalid("events", "memevents: event %d has kind %q", i, e.Kind)
		}
		if e.Tenant == "" {
			return greyerr.Invalid("events", "memevents: event %d has no tenant", i)
		}
	}
	for _, e := range evs {
		k.b.counts[countKey{e.Kind, e.Tenant}]++
		if k.b.discard {
			continue
		}
		e.Value = append([]byte(nil), e.Value...)
		e.Headers = maps.Clone(e.Headers)
		if e.Kind == events.Result {
			k.b.results[e.Tenant] = append(k.b.results[e.Tenant], e)
		} else {
			k.b.lifecycle = append(k.b.lifecycle, e)
		}
	}
	k.b.notifyLocked()
	return nil
}

// As implements events.SinkDriver; it reaches nothing.
func (k *Sink) As(any) bool { return false }

// Close implements events.SinkDriver.
func (k *Sink) Close() error {
	k.b.mu.Lock()
	k.closed = true
	k.b.mu.Unlock()
	return nil
}

// String describes the broker (for logs).
func (b *Broker) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("memevents broker (%d tenants)", len(b.topics))
}
