package kafkaevents

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// maxReasonBytes bounds the grey-dlq-reason header.
const maxReasonBytes = 4096

// revokeCommitWait bounds how long a revocation waits for a commit in
// flight before committing the revoked partitions by itself.
const revokeCommitWait = 3 * time.Second

// Source is the Kafka source driver: a consumer group subscribed to the
// tasks topics by regular expression, committing offsets by hand. It is
// safe for concurrent use; Fetch calls are served one at a time.
//
// Offsets: each partition's fetched offsets are tracked in order; a
// partition's committed offset moves only up to the first fetched message
// not yet acknowledged, so a message is redelivered unless it, and every
// message before it in its partition, was acknowledged. When the group
// takes a partition away, what is committable is committed and the
// partition's tracking is dropped: messages still in flight are
// redelivered to the partition's next owner, which is harmless because a
// message's position is its task's idempotency key.
type Source struct {
	cfg      *config
	group    string
	prefetch int
	cl       *kgo.Client
	adm      *kadm.Client
	topics   *topicMaker
	re       *regexp.Regexp

	fetchMu sync.Mutex // one Fetch at a time

	mu         sync.Mutex
	parts      map[topicPartition]*partition
	nextGen    uint64
	held       []*events.Message // given back by Retry, fetched again first
	paused     map[string]bool   // tenants
	out        int               // handed out by Fetch, not yet acked or retried
	pollCancel context.CancelFunc
	closed     bool

	commitLock chan struct{} // a mutex that can be waited on with a bound
}

type topicPartition struct {
	topic     string
	partition int32
}

// partition is the tracking of one assigned partition.
type partition struct {
	gen         uint64 // changes when the partition is assigned again
	last        int64  // highest offset fetched
	order       []int64
	state       map[int64]msgState
	commitTo    int64 // offset to commit: one past the last contiguous ack
	commitEpoch int32
	committed   int64 // offset last committed
}

type msgState struct {
	st    int8 // stOut, stHeld, stAcked
	epoch int32
}

const (
	stOut int8 = iota + 1
	stHeld
	stAcked
)

// handle is Message.Handle for this driver.
type handle struct {
	tp     topicPartition
	offset int64
	gen    uint64
}

var _ events.SourceDriver = (*Source)(nil)

// OpenSource opens a source on the brokers of u (kafka://host:port,host:port/?settings).
// It does not contact the brokers: greyd starts while Kafka is down, and
// Fetch reports Unavailable until a broker answers.
func OpenSource(ctx context.Context, u *url.URL, opts events.SourceOptions) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := parseConfig(u, opts.Settings)
	if err != nil {
		return nil, err
	}
	if opts.Group == "" {
		return nil, greyerr.Invalid("group", "kafka: a source needs a consumer group (one per Grey cluster)")
	}
	s := &Source{
		cfg:        cfg,
		group:      opts.Group,
		prefetch:   opts.Prefetch,
		re:         regexp.MustCompile(cfg.topicsRegex),
		parts:      map[topicPartition]*partition{},
		paused:     map[string]bool{},
		commitLock: make(chan struct{}, 1),
	}
	if s.prefetch <= 0 {
		s.prefetch = 10_000
	}
	start := kgo.NewOffset().AtStart()
	if cfg.startLatest {
		start = kgo.NewOffset().AtEnd()
	}
	kopts := append(append([]kgo.Opt(nil), cfg.common...),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(cfg.topicsRegex),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(cfg.sessionTimeout),
		kgo.HeartbeatInterval(max(100*time.Millisecond, min(3*time.Second, cfg.sessionTimeout/4))),
		kgo.ConsumeResetOffset(start),
		kgo.FetchMaxWait(cfg.fetchMaxWait),
		// Tasks written by transactional producers count once committed.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		// The dead-letter producer.
		kgo.ProducerBatchCompression(cfg.compression...),
		kgo.RecordDeliveryTimeout(cfg.deliveryTimeout),
	)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.InvalidArgument, err, "kafka: source client")
	}
	s.cl = cl
	s.adm = kadm.NewClient(cl)
	s.topics = newTopicMaker(s.adm, cfg)
	return s, nil
}

// Fetch returns up to max messages, waiting until some are available. It
// returns messages given back by Retry first (those of paused tenants
// stay held), then polls the brokers, never handing out more than the
// prefetch bound unacknowledged. When no record arrives for ping_interval
// and no broker answers a ping, it returns Unavailable. When ctx ends it
// returns ctx's error.
func (s *Source) Fetch(ctx context.Context, max int) ([]*events.Message, error) {
	if max <= 0 {
		max = 1
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, greyerr.New(greyerr.FailedPrecondition, "kafka: source is closed")
		}
		if msgs := s.takeHeldLocked(max); len(msgs) > 0 {
			s.mu.Unlock()
			return msgs, nil
		}
		room := min(max, s.prefetch-s.out)
		pollCtx, cancel := context.WithTimeout(ctx, s.cfg.pingInterval)
		s.pollCancel = cancel
		s.mu.Unlock()

		if room <= 0 {
			// Wait for an Ack or Retry to make room.
			<-pollCtx.Done()
			s.endPoll(cancel)
			continue
		}
		fs := s.cl.PollRecords(pollCtx, room)
		timedOut := errors.Is(pollCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		s.endPoll(cancel)

		s.mu.Lock()
		msgs := s.trackLocked(fs)
		s.out += len(msgs)
		s.mu.Unlock()
		if len(msgs) > 0 {
			return msgs, nil
		}
		for _, fe := range fs.Errors() {
			switch {
			case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			case errors.Is(fe.Err, kgo.ErrClientClosed):
				return nil, greyerr.New(greyerr.FailedPrecondition, "kafka: source is closed")
			default:
				return nil, errorOf(fe.Err, "kafka: fetch %s[%d]", fe.Topic, fe.Partition)
			}
		}
		if timedOut {
			if err := s.ping(ctx); err != nil {
				return nil, err
			}
		}
	}
}

func (s *Source) endPoll(cancel context.CancelFunc) {
	cancel()
	s.mu.Lock()
	s.pollCancel = nil
	s.mu.Unlock()
}

// wakeLocked interrupts a Fetch waiting on the brokers so that it looks
// again at held messages and at room under the prefetch bound.
func (s *Source) wakeLocked() {
	if s.pollCancel != nil {
		s.pollCancel()
	}
}

// ping checks that some broker answers.
func (s *Source) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := s.cl.Ping(pctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if e := errorOf(err, "kafka: connecting to %s", s.cfg.brokerList()); !greyerr.Is(e, greyerr.Unavailable) {
			return e // refused credentials, an untrusted certificate: say so
		}
		return greyerr.Wrap(greyerr.Unavailable, err, "kafka: no broker of %s answers", s.cfg.brokerList())
	}
	return nil
}

// takeHeldLocked hands out up to max held messages of tenants not paused.
func (s *Source) takeHeldLocked(max int) []*events.Message {
	if len(s.held) == 0 {
		return nil
	}
	var out []*events.Message
	keep := s.held[:0]
	for _, m := range s.held {
		h := m.Handle.(*handle)
		p := s.parts[h.tp]
		if p == nil || p.gen != h.gen || p.state[h.offset].st != stHeld {
			continue // revoked or acked meanwhile
		}
		if len(out) >= max || s.paused[m.Tenant] {
			keep = append(keep, m)
			continue
		}
		st := p.state[h.offset]
		st.st = stOut
		p.state[h.offset] = st
		s.out++
		out = append(out, m)
	}
	clear(s.held[len(keep):])
	s.held = keep
	return out
}

// trackLocked registers fetched records and converts them to messages.
func (s *Source) trackLocked(fs kgo.Fetches) []*events.Message {
	var msgs []*events.Message
	fs.EachRecord(func(r *kgo.Record) {
		k := topicPartition{r.Topic, r.Partition}
		p := s.parts[k]
		if p == nil {
			s.nextGen++
			p = &partition{gen: s.nextGen, last: -1, commitTo: -1, committed: -1, state: map[int64]msgState{}}
			s.parts[k] = p
		}
		if r.Offset <= p.last {
			return // already handed out in this assignment
		}
		p.last = r.Offset
		p.order = append(p.order, r.Offset)
		p.state[r.Offset] = msgState{st: stOut, epoch: r.LeaderEpoch}
		msgs = append(msgs, messageOf(r, s.cfg.tasksPrefix, &handle{tp: k, offset: r.Offset, gen: p.gen}))
	})
	return msgs
}

// Ack marks msgs as done and commits, for each partition, the offset after
// its longest acknowledged prefix. Concurrent Acks share commits. A message
// of a partition this member no longer owns is ignored (its next owner
// redelivers it); acknowledging twice is harmless.
func (s *Source) Ack(ctx context.Context, msgs []*events.Message) error {
	s.mu.Lock()
	for _, m := range msgs {
		h, ok := m.Handle.(*handle)
		if !ok {
			continue
		}
		p := s.parts[h.tp]
		if p == nil || p.gen != h.gen {
			continue
		}
		st, ok := p.state[h.offset]
		if !ok || st.st == stAcked {
			continue
		}
		if st.st == stOut {
			s.out--
		}
		st.st = stAcked
		p.state[h.offset] = st
		for len(p.order) > 0 {
			head := p.order[0]
			hs := p.state[head]
			if hs.st != stAcked {
				break
			}
			p.commitTo, p.commitEpoch = head+1, hs.epoch
			delete(p.state, head)
			p.order = p.order[1:]
		}
	}
	s.wakeLocked()
	s.mu.Unlock()
	return s.commit(ctx, nil)
}

// commit commits the committable offsets of every partition (of only
// those in only, when only is not nil).
func (s *Source) commit(ctx context.Context, only map[string][]int32) error {
	select {
	case s.commitLock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.commitLock }()
	return s.commitUnlocked(ctx, only)
}

func (s *Source) commitUnlocked(ctx context.Context, only map[string][]int32) error {
	type sent struct {
		gen    uint64
		offset int64
	}
	offs := map[string]map[int32]kgo.EpochOffset{}
	gens := map[topicPartition]sent{}
	s.mu.Lock()
	for k, p := range s.parts {
		if p.commitTo <= p.committed {
			continue
		}
		if only != nil && !containsPartition(only[k.topic], k.partition) {
			continue
		}
		if offs[k.topic] == nil {
			offs[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offs[k.topic][k.partition] = kgo.EpochOffset{Epoch: p.commitEpoch, Offset: p.commitTo}
		gens[k] = sent{p.gen, p.commitTo}
	}
	s.mu.Unlock()
	if len(offs) == 0 {
		return nil
	}
	var cerr error
	s.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, t := range resp.Topics {
			for _, pr := range t.Partitions {
				k := topicPartition{t.Topic, pr.Partition}
				if perr := kerr.ErrorForCode(pr.ErrorCode); perr != nil {
					if !rebalanceError(perr) && cerr == nil {
						cerr = perr
					}
					continue
				}
				if p, ok := s.parts[k]; ok && p.gen == gens[k].gen && gens[k].offset > p.committed {
					p.committed = gens[k].offset
				}
			}
		}
	})
	if cerr != nil && !rebalanceError(cerr) {
		return errorOf(cerr, "kafka: commit offsets of group %s", s.group)
	}
	return nil
}

func containsPartition(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// onRevoked commits what the revoked partitions allow, then forgets them.
func (s *Source) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t := time.NewTimer(revokeCommitWait)
	defer t.Stop()
	select {
	case s.commitLock <- struct{}{}:
		_ = s.commitUnlocked(cctx, revoked)
		<-s.commitLock
	case <-t.C:
		// An Ack's commit is stuck (probably behind this very
		// rebalance): commit the revoked partitions regardless.
		_ = s.commitUnlocked(cctx, revoked)
	}
	s.drop(revoked)
}

// onLost forgets lost partitions (commits would fail).
func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.drop(lost)
}

// drop forgets partitions: their messages in flight are redelivered to
// their next owner, and later Acks or Retries of them are ignored.
func (s *Source) drop(parts map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range parts {
		for _, pn := range ps {
			k := topicPartition{topic, pn}
			p := s.parts[k]
			if p == nil {
				continue
			}
			for _, st := range p.state {
				if st.st == stOut {
					s.out--
				}
			}
			delete(s.parts, k)
		}
	}
	s.wakeLocked()
}

// Retry gives msgs back: the next Fetch returns them again (after Resume
// for a paused tenant). They stay uncommitted meanwhile.
func (s *Source) Retry(_ context.Context, msgs []*events.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		h, ok := m.Handle.(*handle)
		if !ok {
			continue
		}
		p := s.parts[h.tp]
		if p == nil || p.gen != h.gen {
			continue
		}
		st, ok := p.state[h.offset]
		if !ok || st.st != stOut {
			continue
		}
		st.st = stHeld
		p.state[h.offset] = st
		s.out--
		s.held = append(s.held, m)
	}
	// Keep the held messages in partition order for the next Fetch.
	sort.SliceStable(s.held, func(i, j int) bool {
		a, b := s.held[i].Handle.(*handle), s.held[j].Handle.(*handle)
		if a.tp.topic != b.tp.topic {
			return a.tp.topic < b.tp.topic
		}
		if a.tp.partition != b.tp.partition {
			return a.tp.partition < b.tp.partition
		}
		return a.offset < b.offset
	})
	s.wakeLocked()
	return nil
}

// DeadLetter writes m to grey.dlq.<tenant> with the reason and the
// original topic, partition and offset in headers (grey-dlq-*), then
// acknowledges m. A body larger than dlq_max_value_bytes is left out and
// its size is named in grey-dlq-truncated.
func (s *Source) DeadLetter(ctx context.Context, m *events.Message, reason string) error {
	h, ok := m.Handle.(*handle)
	if !ok {
		return greyerr.Invalid("message", "kafka: message was not fetched by this driver")
	}
	tenant := m.Tenant
	if tenant == "" {
		tenant = "_"
	}
	topic := s.cfg.dlqPrefix + tenant
	if err := s.topics.ensure(ctx, topic); err != nil {
		return err
	}
	rec := dlqRecord(topic, m, h, reason, s.cfg.dlqMaxValue)
	err := s.cl.ProduceSync(ctx, rec).FirstErr()
	if greyerr.Is(errorOf(err, ""), greyerr.TooLarge) && rec.Value != nil {
		// The broker's limit is below dlq_max_value_bytes: keep the
		// reason and position, drop the body.
		rec = dlqRecord(topic, m, h, reason, 0)
		err = s.cl.ProduceSync(ctx, rec).FirstErr()
	}
	if err != nil {
		return errorOf(err, "kafka: dead-letter %s to %s", m.Position, topic)
	}
	return s.Ack(ctx, []*events.Message{m})
}

// dlqRecord builds the dead-letter record of m.
func dlqRecord(topic string, m *events.Message, h *handle, reason string, maxValue int) *kgo.Record {
	rec := &kgo.Record{Topic: topic, Key: m.Key}
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		if len(k) >= 9 && k[:9] == "grey-dlq-" {
			continue // ours, from an earlier dead-lettering: replaced below
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(m.Headers[k])})
	}
	add := func(k, v string) { rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderDLQReason, truncateUTF8(reason, maxReasonBytes))
	add(HeaderDLQTopic, h.tp.topic)
	add(HeaderDLQPartition, strconv.FormatInt(int64(h.tp.partition), 10))
	add(HeaderDLQOffset, strconv.FormatInt(h.offset, 10))
	add(HeaderDLQPosition, m.Position)
	if len(m.Value) > maxValue {
		add(HeaderDLQTruncated, strconv.Itoa(len(m.Value)))
	} else {
		rec.Value = m.Value
	}
	return rec
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Pause stops fetching tenant's topic (PauseFetchTopics); records of it
// already buffered in the client are not returned until Resume, and its
// held messages stay held.
func (s *Source) Pause(tenant string) {
	s.mu.Lock()
	s.paused[tenant] = true
	s.mu.Unlock()
	s.cl.PauseFetchTopics(s.cfg.tasksPrefix + tenant)
}

// Resume undoes Pause.
func (s *Source) Resume(tenant string) {
	s.mu.Lock()
	delete(s.paused, tenant)
	s.wakeLocked()
	s.mu.Unlock()
	s.cl.ResumeFetchTopics(s.cfg.tasksPrefix + tenant)
}

// Lag returns, per tenant whose topic matches the subscription, the
// records after the group's committed offsets (from the start of the
// partition where the group has committed nothing and start is earliest).
func (s *Source) Lag(ctx context.Context) (map[string]int64, error) {
	details, err := s.adm.ListTopics(ctx)
	if err != nil {
		return nil, errorOf(err, "kafka: list topics")
	}
	var names []string
	for _, t := range details.Names() {
		if s.re.MatchString(t) {
			names = append(names, t)
		}
	}
	out := map[string]int64{}
	if len(names) == 0 {
		return out, nil
	}
	ends, err := s.adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, errorOf(err, "kafka: end offsets")
	}
	if err := ends.Error(); err != nil {
		return nil, errorOf(err, "kafka: end offsets")
	}
	starts, err := s.adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, errorOf(err, "kafka: start offsets")
	}
	committed, err := s.adm.FetchOffsetsForTopics(ctx, s.group, names...)
	if err != nil {
		return nil, errorOf(err, "kafka: committed offsets of group %s", s.group)
	}
	ends.Each(func(o kadm.ListedOffset) {
		tenant := TenantOf(o.Topic, s.cfg.tasksPrefix)
		from := int64(-1)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			from = c.At
		}
		if from < 0 {
			if s.cfg.startLatest {
				from = o.Offset
			} else if st, ok := starts.Lookup(o.Topic, o.Partition); ok && st.Err == nil {
				from = st.Offset
			} else {
				from = 0
			}
		}
		out[tenant] += max(0, o.Offset-from)
	})
	return out, nil
}

// As reaches the native clients: *kgo.Client (the consumer, which also
// writes dead letters) and *kadm.Client.
func (s *Source) As(i any) bool {
	switch p := i.(type) {
	case **kgo.Client:
		*p = s.cl
	case **kadm.Client:
		*p = s.adm
	default:
		return false
	}
	return true
}

// Close commits what acknowledgements allow and leaves the group: every
// message not committed is redelivered to the next consumer.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.wakeLocked()
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.commit(ctx, nil)
	s.cl.Close()
	return err
}
