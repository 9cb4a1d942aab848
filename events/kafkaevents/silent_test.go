package kafkaevents_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/kafkaevents"
	"github.com/grey-distributed/grey/greyerr"
)

// silentBroker accepts TCP connections and reads them, never answering:
// a broker that is up but does not serve (the case that held the
// RabbitMQ sink for ever).
func silentBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// TestSinkSilentBrokerIsBounded: Publish called as the relay calls it
// (a context without deadline) returns Unavailable when the broker
// accepts connections but never answers. franz-go bounds every request
// (request timeout, retry timeout) and the sink bounds records by
// delivery_timeout and the end of a transaction by the same, so the
// Kafka sink has no wait without end. Set GREY_KAFKA_SLOW_TESTS=1 for the
// transactional sink and topic creation too: each comes back after about
// a minute of franz-go's request timeouts.
func TestSinkSilentBrokerIsBounded(t *testing.T) {
	t.Parallel()
	addr := silentBroker(t)
	u, _ := url.Parse("kafka://" + addr + "/")
	type tc struct{ txn, create bool }
	cases := []tc{{false, false}}
	if os.Getenv("GREY_KAFKA_SLOW_TESTS") != "" {
		cases = append(cases, tc{true, false}, tc{false, true})
	}
	for _, c := range cases {
		txn := c.txn
		sk, err := kafkaevents.OpenSink(context.Background(), u, events.SinkOptions{Transactional: txn,
			Settings: map[string]string{kafkaevents.SettingDeliveryTimeout: "2s", kafkaevents.SettingCreateTopics: strconv.FormatBool(c.create)}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			done <- sk.Publish(context.Background(), []events.Event{{Kind: events.Result, Tenant: "acme", Key: "x", Value: []byte("{}")}})
		}()
		select {
		case err := <-done:
			if !greyerr.Is(err, greyerr.Unavailable) {
				t.Errorf("%+v: publish to a silent broker: %v (code %s), want Unavailable", c, err, greyerr.CodeOf(err))
			}
			t.Logf("%+v: returned after %v: %v", c, time.Since(start).Round(time.Millisecond), err)
		case <-time.After(3 * time.Minute):
			t.Fatalf("%+v: publish to a silent broker still waiting after 3 minutes", c)
		}
		_ = sk.Close()
	}
}
