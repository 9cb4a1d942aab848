package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/kafkaevents"
	"github.com/grey-distributed/grey/events/rabbitevents"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/internal/testtls"
	"github.com/grey-distributed/grey/task"
)

// A broker whose certificate the configured CA does not sign does not stop
// greyd: /readyz names each Kafka and RabbitMQ source and sink as degraded
// with the TLS reason, and API submissions go on. The "broker" is a bare
// TLS listener: the client gives up in the handshake, before any protocol.
func TestEventsUntrustedBrokerCertificate(t *testing.T) {
	certs, other := testtls.New(t, "broker"), testtls.New(t, "other")
	pair, err := tls.LoadX509KeyPair(certs.Cert, certs.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			} else if err != nil {
				continue
			}
			go func() {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				_ = c.Close()
			}()
		}
	}()
	addr := ln.Addr().String()
	reg := events.NewRegistry()
	for _, r := range []func(*events.Registry) error{kafkaevents.Register, rabbitevents.Register} {
		if err := r(reg); err != nil {
			t.Fatal(err)
		}
	}
	_, mk := startServerWith(t, "", 0, []Option{WithEventsRegistry(reg)}, func(cfg *config.Config) {
		k := &cfg.Events.Kafka
		k.Brokers, k.Source, k.Sink = []string{addr}, true, true
		k.TLS.Enabled, k.TLS.CAFile = true, other.CA
		r := &cfg.Events.RabbitMQ
		r.URL, r.Source, r.Sink = config.SecretURL("amqps://guest:guest@"+addr+"/"), true, true
		r.TLS.CAFile = other.CA
	})
	ctx := context.Background()
	c := mk("acme")
	// A finished task gives the sinks something to fail on.
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	var last *client.Readiness
	want := []string{"events_kafka_source", "events_kafka", "events_rabbitmq_source", "events_rabbitmq"}
	greytest.Eventually(t, 60*time.Second, func() bool {
		r, err := c.Readiness(ctx)
		if err != nil {
			return false
		}
		last = r
		if r.Status != "degraded" {
			return false
		}
		for _, name := range want {
			if !containsAll(r.Degraded[name], "TLS", "certificate") {
				return false
			}
		}
		return true
	})
	for _, name := range want {
		t.Logf("%s: %s", name, last.Degraded[name])
	}
}
