package server

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/relay"
	"github.com/grey-distributed/grey/task"
)

// WithEventsRegistry gives the server the event-stream drivers of this
// binary (cmd/greyd links them): events.kafka opens kafka://, and
// events.rabbitmq its amqp:// or amqps:// URL, with the driver registered
// for the scheme.
func WithEventsRegistry(reg *events.Registry) Option {
	return func(o *options) { o.events = reg }
}

// eventStreams are the configured event sources and sinks.
type eventStreams struct {
	sources []*eventSource
	sinks   []*eventSink
}

type eventSource struct {
	name, url string
	c         *events.Consumer
}

type eventSink struct {
	name, url string
	p         *events.Publisher
}

// eventStream is one broker's block as the server opens it.
type eventStream struct {
	name          string
	url           string
	source, sink  bool
	sourceOptions events.SourceOptions
	sinkOptions   events.SinkOptions
	lifecycle     []string // events.<name>.lifecycle
}

// eventBlocks turns the events block into the streams to open.
func eventBlocks(cfg *config.Config) []eventStream {
	var out []eventStream
	if k := cfg.Events.Kafka; k.Enabled() {
		settings := map[string]string{
			events.SettingBrokers:       strings.Join(k.Brokers, ","),
			events.SettingTopicsRegex:   k.TopicsRegex,
			events.SettingCompression:   k.Compression,
			events.SettingSASLMechanism: k.SASL.Mechanism,
			events.SettingSASLUsername:  k.SASL.Username,
			events.SettingSASLPassword:  string(k.SASL.Password),
			events.SettingTLS:           strconv.FormatBool(k.TLS.Enabled),
			events.SettingTLSCAFile:     k.TLS.CAFile,
			// One transactional producer per cluster: a new leader's
			// fences the old one's, another cluster's is left alone.
			events.SettingTransactionalID: "grey-" + k.Group + "-events",
		}
		out = append(out, eventStream{name: "kafka", url: "kafka://" + k.Brokers[0], source: k.Source, sink: k.Sink,
			sourceOptions: events.SourceOptions{Group: k.Group, Settings: settings},
			sinkOptions:   events.SinkOptions{Transactional: k.Transactional, Settings: settings}, lifecycle: k.Lifecycle})
	}
	if r := cfg.Events.RabbitMQ; r.Enabled() {
		settings := map[string]string{
			events.SettingQueueType:      r.QueueType,
			events.SettingDeliveryLimit:  strconv.Itoa(r.DeliveryLimit),
			events.SettingMaxPriority:    strconv.Itoa(r.MaxPriority),
			events.SettingConfirmTimeout: r.ConfirmTimeout.Std().String(),
		}
		if r.TLS.CAFile != "" {
			settings[events.SettingTLSCAFile] = r.TLS.CAFile
		}
		out = append(out, eventStream{name: "rabbitmq", url: string(r.URL), source: r.Source, sink: r.Sink,
			sourceOptions: events.SourceOptions{Prefetch: r.Prefetch, Settings: settings},
			sinkOptions:   events.SinkOptions{Settings: settings}, lifecycle: r.Lifecycle})
	}
	return out
}

// openEvents builds the configured event streams. Nothing connects yet:
// a consumer opens its source when this node leads, a publisher its sink
// on its first delivery, so a broker that is down at start degrades the
// stream (/readyz says so) instead of stopping greyd. A URL this build
// cannot open does stop it.
func openEvents(cfg *config.Config, o *options, reg prometheus.Registerer, logger *slog.Logger, submit submitter, tenants func(context.Context) []string) (*eventStreams, error) {
	blocks := eventBlocks(cfg)
	es := &eventStreams{}
	if len(blocks) == 0 {
		return es, nil
	}
	if o.events == nil {
		return nil, fmt.Errorf("events.%s: this build links no event drivers", blocks[0].name)
	}
	m, err := events.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("events metrics: %w", err)
	}
	for _, b := range blocks {
		if err := o.events.Check(b.url); err != nil {
			return nil, fmt.Errorf("events.%s: %w", b.name, err)
		}
		b := b
		log := logger.With("component", "events", "broker", b.name)
		if b.source {
			c, err := events.NewConsumerFunc(func(ctx context.Context) (events.SourceDriver, error) {
				so := b.sourceOptions
				so.Settings = maps.Clone(so.Settings)
				so.Settings[events.SettingTenants] = strings.Join(tenants(ctx), ",")
				return o.events.OpenSource(ctx, b.url, so)
			}, events.ConsumerOptions{Name: b.name, Submit: submit.one, SubmitBatch: submit.batch, MaxMessageBytes: maxMessageBytes(cfg), Logger: log, Metrics: m})
			if err != nil {
				return nil, err
			}
			es.sources = append(es.sources, &eventSource{name: b.name, url: events.Redact(b.url), c: c})
		}
		if b.sink {
			life, err := events.ParseLifecycle(b.lifecycle)
			if err != nil {
				return nil, fmt.Errorf("events.%s.lifecycle: %w", b.name, err)
			}
			p, err := events.NewPublisherFunc(func(ctx context.Context) (events.SinkDriver, error) {
				return o.events.OpenSink(ctx, b.url, b.sinkOptions)
			}, events.PublisherOptions{Name: b.name, Lifecycle: life, Logger: log, Metrics: m})
			if err != nil {
				return nil, err
			}
			es.sinks = append(es.sinks, &eventSink{name: b.name, url: events.Redact(b.url), p: p})
		}
	}
	return es, nil
}

// maxMessageBytes is the largest message a source takes: room for the
// largest inline payload and the rest of the spec.
func maxMessageBytes(cfg *config.Config) int {
	return int(cfg.Tasks.MaxPayloadBytes) + 1<<20
}

// relaySinks are the publishers, for engine.Config.Sinks.
func (es *eventStreams) relaySinks() []relay.Sink {
	out := make([]relay.Sink, len(es.sinks))
	for i, s := range es.sinks {
		out[i] = s.p
	}
	return out
}

// onLeader are the consumers' runs, for engine.Config.OnLeader.
func (es *eventStreams) onLeader() []func(context.Context) {
	out := make([]func(context.Context), len(es.sources))
	for i, s := range es.sources {
		c := s.c
		out[i] = func(ctx context.Context) { _ = c.Run(ctx) }
	}
	return out
}

// health names the event streams that do not work fully, for /readyz: a
// source whose broker does not answer (events_<name>_source), a sink whose
// deliveries fail (events_<name>).
func (es *eventStreams) health(relays func() []relay.Status) map[string]string {
	out := map[string]string{}
	for _, s := range es.sources {
		if why := s.c.Degraded(); why != "" {
			out[events.SinkName(s.name)+"_source"] = why
		}
	}
	if len(es.sinks) == 0 {
		return out
	}
	byName := map[string]relay.Status{}
	for _, st := range relays() {
		byName[st.Name] = st
	}
	for _, s := range es.sinks {
		st, ok := byName[s.p.Name()]
		if !ok || st.Failures == 0 {
			continue
		}
		out[s.p.Name()] = fmt.Sprintf("event sink %s failing (%d times): %s; %d finished tasks wait to be published (lag %.0fs)",
			s.name, st.Failures, st.LastError, st.Backlog, st.LagSeconds)
	}
	return out
}

// status is the answer of GET /api/v1/cluster/events.
func (es *eventStreams) status(relays func() []relay.Status) apitypes.EventsStatus {
	out := apitypes.EventsStatus{Sources: []apitypes.EventSource{}, Sinks: []apitypes.EventSink{}}
	for _, s := range es.sources {
		st := s.c.Status()
		src := apitypes.EventSource{Name: s.name, URL: s.url, Running: st.Running, Lag: st.Lag, LagAt: st.LagAt, Paused: st.Paused,
			Consumed: st.Consumed, DeadLettered: st.DeadLettered, Failures: st.Failures, LastError: st.LastError, LastErrorAt: st.LastErrorAt}
		for _, n := range st.Lag {
			src.TotalLag += n
		}
		out.Sources = append(out.Sources, src)
	}
	byName := map[string]relay.Status{}
	if len(es.sinks) > 0 {
		for _, st := range relays() {
			byName[st.Name] = st
		}
	}
	for _, s := range es.sinks {
		st := byName[s.p.Name()]
		own := s.p.Status()
		sink := apitypes.EventSink{Name: s.name, Relay: s.p.Name(), URL: s.url, Watermark: st.Cursor, LagTasks: st.Backlog, LagSeconds: st.LagSeconds,
			Failures: st.Failures, LastError: st.LastError, LastErrorAt: st.LastErrorAt, LastDelivery: st.LastDelivery,
			Lifecycle: own.Lifecycle, LifecycleDropped: own.LifecycleDropped}
		if sink.LastError == "" && own.LastError != "" {
			sink.LastError, sink.LastErrorAt = own.LastError, own.LastErrorAt
		}
		out.Sinks = append(out.Sinks, sink)
	}
	sort.Slice(out.Sources, func(i, j int) bool { return out.Sources[i].Name < out.Sources[j].Name })
	sort.Slice(out.Sinks, func(i, j int) bool { return out.Sinks[i].Name < out.Sinks[j].Name })
	return out
}

// close closes the publishers' drivers.
func (es *eventStreams) close() {
	for _, s := range es.sinks {
		_ = s.p.Close()
	}
}

// tenantIDs lists the tenants the state knows, for drivers that declare a
// queue per tenant.
func (s *Server) tenantIDs(ctx context.Context) []string {
	if s.eng == nil {
		return nil
	}
	var out []string
	for _, t := range s.eng.ListTenants(ctx) {
		out = append(out, t.ID)
	}
	sort.Strings(out)
	return out
}

// submitter is the consumers' way into the engine.
type submitter struct {
	one   events.SubmitFunc
	batch func(ctx context.Context, tenant string, specs []task.Spec) ([]*task.Task, error)
}

// submitter submits through engine.Submit: one spec, or a batch of one
// tenant's specs in one Raft entry.
func (s *Server) submitter() submitter {
	return submitter{
		one: func(ctx context.Context, tenant string, spec task.Spec) (*task.Task, error) {
			if s.eng == nil {
				return nil, greyerr.New(greyerr.Unavailable, "the server is starting")
			}
			res, err := s.eng.Submit(ctx, tenant, []task.Spec{spec}, false)
			if err != nil {
				return nil, err
			}
			return res.Tasks[0], nil
		},
		batch: func(ctx context.Context, tenant string, specs []task.Spec) ([]*task.Task, error) {
			if s.eng == nil {
				return nil, greyerr.New(greyerr.Unavailable, "the server is starting")
			}
			res, err := s.eng.Submit(ctx, tenant, specs, true)
			if err != nil {
				return nil, err
			}
			return res.Tasks, nil
		},
	}
}
