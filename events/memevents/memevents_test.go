package memevents_test

import (
	"errors"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/eventstest"
	"github.com/grey-distributed/grey/events/memevents"
)

// brokers hands each test its broker: the drivers one test opens share it.
func sourceHarness() eventstest.SourceHarness {
	brokers := map[testing.TB]*memevents.Broker{}
	broker := func(t testing.TB) *memevents.Broker {
		b := brokers[t]
		if b == nil {
			b = memevents.New()
			brokers[t] = b
		}
		return b
	}
	return eventstest.SourceHarness{
		Open: func(t testing.TB, _ []string) events.SourceDriver {
			d, err := broker(t).OpenSource()
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Produce: func(t testing.TB, tenant string, p eventstest.Produced) {
			if _, err := broker(t).Produce(tenant, memevents.Message{Key: p.Key, Value: p.Value, Headers: p.Headers, ContentType: p.ContentType}); err != nil {
				t.Fatal(err)
			}
		},
		DeadLetters: func(t testing.TB, tenant string, _ int) []eventstest.DeadLetter {
			var out []eventstest.DeadLetter
			for _, d := range broker(t).DeadLetters(tenant) {
				out = append(out, eventstest.DeadLetter{Value: d.Message.Value, Headers: d.Message.Headers})
			}
			return out
		},
		Unreachable: func(t testing.TB) (events.SourceDriver, error) {
			b := memevents.New()
			d, err := b.OpenSource()
			if err != nil {
				t.Fatal(err)
			}
			b.SetUnavailable(errors.New("connection refused"))
			return d, nil
		},
		Timeout: 5 * time.Second,
		Quiet:   200 * time.Millisecond,
	}
}

func TestSourceConformance(t *testing.T) {
	eventstest.RunSource(t, sourceHarness())
}

func TestSinkConformance(t *testing.T) {
	b := memevents.New()
	eventstest.RunSink(t, eventstest.SinkHarness{
		Open: func(t testing.TB) events.SinkDriver {
			d, err := b.OpenSink()
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Read: func(_ testing.TB, kind events.EventKind, tenant string, _ int) []events.Event {
			return b.Published(kind, tenant)
		},
		Unreachable: func(t testing.TB) (events.SinkDriver, error) {
			u := memevents.New()
			u.SetUnavailable(errors.New("connection refused"))
			return u.OpenSink()
		},
		Timeout: 5 * time.Second,
	})
}

func TestRegisteredScheme(t *testing.T) {
	reg := events.NewRegistry()
	b := memevents.New()
	if err := memevents.Register(reg, b); err != nil {
		t.Fatal(err)
	}
	if err := memevents.Register(reg, b); err == nil {
		t.Fatal("registering mem twice succeeded")
	}
	if got := reg.Schemes(); len(got) != 1 || got[0] != "mem" {
		t.Fatalf("schemes %v", got)
	}
	ctx := t.Context()
	src, err := reg.OpenSource(ctx, "mem://local", events.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink, err := reg.OpenSink(ctx, "mem://local", events.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if _, err := b.Produce("acme", memevents.Message{Value: []byte(`{"kind":"noop"}`)}); err != nil {
		t.Fatal(err)
	}
	msgs, err := src.Fetch(ctx, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Tenant != "acme" || msgs[0].Position != "mem:grey.tasks.acme/0" {
		t.Fatalf("Fetch: %v %v", msgs, err)
	}
}

func TestCountAndDiscard(t *testing.T) {
	for _, discard := range []bool{false, true} {
		b := memevents.New()
		if discard {
			b.DiscardPublished()
		}
		d, err := b.OpenSink()
		if err != nil {
			t.Fatal(err)
		}
		evs := []events.Event{
			{Kind: events.Result, Tenant: "acme", Key: "t1", Value: []byte(`{}`)},
			{Kind: events.Lifecycle, Tenant: "acme", Key: "t1", Value: []byte(`{}`)},
			{Kind: events.Result, Tenant: "globex", Key: "t2", Value: []byte(`{}`)},
		}
		if err := d.Publish(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		if err := d.Publish(t.Context(), evs[:1]); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			kind   events.EventKind
			tenant string
			want   int
		}{{events.Result, "acme", 2}, {events.Lifecycle, "acme", 1}, {events.Result, "globex", 1}, {events.Lifecycle, "globex", 0}, {events.Result, "initech", 0}} {
			if got := b.Count(c.kind, c.tenant); got != c.want {
				t.Errorf("discard %v: Count(%s, %s) = %d, want %d", discard, c.kind, c.tenant, got, c.want)
			}
			kept := len(b.Published(c.kind, c.tenant))
			if want := c.want; discard && kept != 0 || !discard && kept != want {
				t.Errorf("discard %v: Published(%s, %s) holds %d", discard, c.kind, c.tenant, kept)
			}
		}
		// a refused batch counts nothing
		if err := d.Publish(t.Context(), []events.Event{{Kind: events.Result, Tenant: "acme"}, {Kind: "bogus", Tenant: "acme"}}); err == nil {
			t.Fatal("a batch with an unknown kind was published")
		}
		if got := b.Count(events.Result, "acme"); got != 2 {
			t.Errorf("discard %v: a refused batch counted: %d", discard, got)
		}
	}
}
