package rabbitevents_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/rabbitevents"
	"github.com/grey-distributed/grey/greyerr"
)

// stallProxy forwards TCP connections to a broker. stall turns every
// connection open at that moment into what a RabbitMQ node makes of a
// connection it stopped serving (a channel blocked by flow control
// towards a queue that does not answer; the broker pauses its own
// heartbeat monitor then, so it never closes the connection): the
// client's bytes are no longer read, nothing is answered, and heartbeat
// frames keep coming, so the client's heartbeat check is satisfied.
// Connections opened later are served normally.
type stallProxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	quit   chan struct{}

	mu    sync.Mutex
	live  []*proxied
	conns []net.Conn
}

// proxied is one proxied connection.
type proxied struct {
	client, broker net.Conn
	wmu            sync.Mutex // whole frames to the client
	stalled        chan struct{}
}

func newStallProxy(t testing.TB, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{t: t, ln: ln, target: target, quit: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		close(p.quit)
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	return p
}

func (p *stallProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		pc := &proxied{client: c, broker: b, stalled: make(chan struct{})}
		p.mu.Lock()
		p.live = append(p.live, pc)
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		go p.toClient(pc)
		go p.toBroker(pc)
	}
}

// toClient copies the broker's frames to the client, a whole frame at a
// time (type, channel, size, payload, frame-end), so that heartbeats may
// be written between them.
func (p *stallProxy) toClient(pc *proxied) {
	hdr := make([]byte, 7)
	for {
		if _, err := io.ReadFull(pc.broker, hdr); err != nil {
			break
		}
		size := binary.BigEndian.Uint32(hdr[3:7])
		frame := make([]byte, 7+int(size)+1)
		copy(frame, hdr)
		if _, err := io.ReadFull(pc.broker, frame[7:]); err != nil {
			break
		}
		pc.wmu.Lock()
		_, err := pc.client.Write(frame)
		pc.wmu.Unlock()
		if err != nil {
			break
		}
	}
	select {
	case <-pc.stalled: // the client must not notice
	default:
		_ = pc.client.Close()
	}
}

// toBroker copies the client's bytes to the broker until the connection
// is stalled, then reads nothing more.
func (p *stallProxy) toBroker(pc *proxied) {
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-pc.stalled:
			return
		default:
		}
		_ = pc.client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := pc.client.Read(buf)
		if n > 0 {
			if _, werr := pc.broker.Write(buf[:n]); werr != nil {
				return
			}
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			_ = pc.broker.Close()
			return
		}
	}
}

// heartbeats writes an AMQP heartbeat frame to a stalled connection's
// client every second.
func (p *stallProxy) heartbeats(pc *proxied) {
	frame := []byte{8, 0, 0, 0, 0, 0, 0, 0xCE}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
		pc.wmu.Lock()
		_, err := pc.client.Write(frame)
		pc.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// stall stalls every connection open now.
func (p *stallProxy) stall() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.live {
		close(pc.stalled)
		_ = pc.broker.Close() // the broker forgets it; the client does not know
		go p.heartbeats(pc)
	}
	n := len(p.live)
	p.live = nil
	return n
}

// URL returns u with the proxy as its host.
func (p *stallProxy) URL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		p.t.Fatal(err)
	}
	pu.Host = p.ln.Addr().String()
	return pu.String()
}

// TestSinkWedgedConnection: a broker that keeps a connection alive
// (heartbeats) but stops reading it never confirms the batch in flight.
// Publish, called like the relay calls it (a context without deadline),
// must return Unavailable after confirm_timeout instead of waiting for
// ever, and the next Publish must go out on a new connection.
func TestSinkWedgedConnection(t *testing.T) {
	e := newEnv(t, nil)
	pu, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	p := newStallProxy(t, pu.Host)
	resultsQ := "greytest.q.results." + e.sfx
	{
		ch, err := e.conn.Channel()
		must(t, err)
		must(t, ch.ExchangeDeclare(e.names["results_exchange"], amqp.ExchangeTopic, true, false, false, false, nil))
		_, err = ch.QueueDeclare(resultsQ, true, false, false, false, nil)
		must(t, err)
		must(t, ch.QueueBind(resultsQ, "#", e.names["results_exchange"], false, nil))
		ch.Close()
		e.queues[resultsQ] = true
	}
	set := e.settings(nil)
	set[rabbitevents.SettingConfirmTimeout] = "2s"
	k, err := rabbitevents.OpenSink(p.URL(e.url), events.SinkOptions{Settings: set})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ev := func(id string) []events.Event {
		return []events.Event{{Kind: events.Result, Tenant: "acme", Key: id, Value: []byte(`{}`), Headers: map[string]string{"grey-task-id": id, "grey-attempt": "1"}}}
	}
	if err := k.Publish(ctxT(t, 20*time.Second), ev("before")); err != nil {
		t.Fatalf("publish before the stall: %v", err)
	}
	if n := p.stall(); n != 1 {
		t.Fatalf("%d connections stalled, want the sink's one", n)
	}
	// Large enough batches to fill the socket buffers: the write itself
	// blocks, not only the wait for confirms.
	big := make([]events.Event, 200)
	for i := range big {
		big[i] = events.Event{Kind: events.Result, Tenant: "acme", Key: "stalled", Value: make([]byte, 64<<10), Headers: map[string]string{"grey-task-id": "stalled", "grey-attempt": "1"}}
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- k.Publish(context.Background(), big) }()
	select {
	case err := <-done:
		if !greyerr.Is(err, greyerr.Unavailable) {
			t.Fatalf("publish on the stalled connection: %v, want Unavailable", err)
		}
		t.Logf("publish on the stalled connection returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("publish on a stalled connection still waiting after 30 s (confirm_timeout 2s)")
	}
	// The relay retries: the sink must have reconnected (through the
	// proxy, whose new connections are served).
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := k.Publish(context.Background(), ev("after"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after the stall: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := e.waitFor(t, resultsQ, 2, 10*time.Second, func(d amqp.Delivery) bool { return d.MessageId == "before/1" || d.MessageId == "after/1" })
	if len(got) != 2 {
		t.Fatalf("results queue holds %d of the 2 confirmed messages", len(got))
	}
}
