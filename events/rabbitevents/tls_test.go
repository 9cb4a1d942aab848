package rabbitevents_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/eventstest"
	"github.com/grey-distributed/grey/events/rabbitevents"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testtls"
)

// TestTLS runs the source and sink suites through a private node's
// amqps:// listener (a certificate of the test's own CA, named by
// tls_ca_file), then shows the bad cases: another CA is a clear TLS
// error, a CA file with a plain amqp:// URL a refused setting.
func TestTLS(t *testing.T) {
	certs := testtls.New(t, "rabbitmq")
	b := startPrivateBrokerTLS(t, false, &certs)
	ca := map[string]string{"tls_ca_file": certs.CA}
	t.Run("Conformance", func(t *testing.T) {
		e := newEnvURL(t, b.URL(), ca)
		e.driver = b.TLSURL()
		eventstest.RunSource(t, e.sourceHarness())
		eventstest.RunSink(t, e.sinkHarness(t))
	})
	t.Run("CAInURL", func(t *testing.T) {
		// amqp091's own query keys, without tls_ca_file
		k, err := rabbitevents.OpenSink(b.TLSURL()+"?cacertfile="+certs.CA, events.SinkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := k.Publish(ctx, []events.Event{{Kind: events.Result, Tenant: "acme", Key: "t1", Value: []byte(`{}`)}}); err != nil {
			t.Fatalf("Publish over amqps:// with ?cacertfile: %v", err)
		}
		_, err = rabbitevents.OpenSink(b.TLSURL()+"?cacertfile="+certs.CA, events.SinkOptions{Settings: ca})
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Fatalf("tls_ca_file and ?cacertfile: %v, want InvalidArgument", err)
		}
	})
	t.Run("UntrustedCertificate", func(t *testing.T) {
		other := testtls.New(t, "other")
		set := map[string]string{"tenants": "acme", "tls_ca_file": other.CA}
		s, err := rabbitevents.OpenSource(b.TLSURL(), events.SourceOptions{Settings: set})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		k, err := rabbitevents.OpenSink(b.TLSURL(), events.SinkOptions{Settings: map[string]string{"tls_ca_file": other.CA}})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, ferr := s.Fetch(ctx, 1)
		perr := k.Publish(ctx, []events.Event{{Kind: events.Result, Tenant: "acme", Key: "t1", Value: []byte(`{}`)}})
		if ctx.Err() != nil {
			t.Fatalf("waited 20 s instead of failing: %v / %v", ferr, perr)
		}
		for name, err := range map[string]error{"source": ferr, "sink": perr} {
			t.Logf("%s: %v", name, err)
			if err == nil || !strings.Contains(err.Error(), "TLS") || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("%s: %v: not a clear TLS error", name, err)
			}
			if !greyerr.Is(err, greyerr.Unauthenticated) {
				t.Errorf("%s: %v: code %s, want Unauthenticated", name, err, greyerr.CodeOf(err))
			}
		}
	})
	t.Run("CAFileNeedsAMQPS", func(t *testing.T) {
		_, err := rabbitevents.OpenSink(b.URL(), events.SinkOptions{Settings: ca})
		if !greyerr.Is(err, greyerr.InvalidArgument) || !strings.Contains(err.Error(), "amqps://") {
			t.Fatalf("OpenSink(amqp://, tls_ca_file): %v, want InvalidArgument naming amqps://", err)
		}
		_, err = rabbitevents.OpenSource(b.URL(), events.SourceOptions{Settings: map[string]string{"tenants": "acme", "tls_ca_file": certs.CA}})
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Fatalf("OpenSource(amqp://, tls_ca_file): %v, want InvalidArgument", err)
		}
	})
}

func TestTLSSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/not.pem"
	must(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for name, ca := range map[string]string{"missing": dir + "/missing.pem", "not PEM": notPEM} {
		_, err := rabbitevents.OpenSink("amqps://guest:guest@127.0.0.1:1/", events.SinkOptions{Settings: map[string]string{"tls_ca_file": ca}})
		if !greyerr.Is(err, greyerr.InvalidArgument) || !strings.Contains(err.Error(), "tls.ca_file") {
			t.Errorf("%s CA file: %v, want InvalidArgument naming tls.ca_file", name, err)
		}
	}
}
