package kafkaevents_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/kafkaevents"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testtls"
)

// TestSASLSSL runs the source and sink suites through a private broker's
// SASL_SSL listener (SCRAM users created at format time, a certificate of
// the test's own CA), then shows the bad cases: a wrong password and an
// untrusted certificate are clear errors, not hangs.
func TestSASLSSL(t *testing.T) {
	certs := testtls.New(t, "kafka")
	k := startPrivateKafkaWith(t, &kafkaSecurity{keystore: certs.KeyAndChain, scram: []string{
		"SCRAM-SHA-256=[name=alice,password=alice-secret]",
		"SCRAM-SHA-512=[name=bob,password=bob-secret]",
	}})
	b := harnessBase{url: k.SecureURL(), brokers: k.Addr(), run: uniq()}
	secure := func(mech, user, pass, ca string) map[string]string {
		return map[string]string{
			kafkaevents.SettingSASLMechanism: mech,
			kafkaevents.SettingSASLUsername:  user,
			kafkaevents.SettingSASLPassword:  pass,
			kafkaevents.SettingTLS:           "true",
			kafkaevents.SettingTLSCAFile:     ca,
		}
	}
	t.Run("SourceSCRAM256", func(t *testing.T) {
		runSourceConformance(t, b, secure("SCRAM-SHA-256", "alice", "alice-secret", certs.CA))
	})
	t.Run("SinkSCRAM512", func(t *testing.T) {
		runSinkConformance(t, b, secure("SCRAM-SHA-512", "bob", "bob-secret", certs.CA))
	})

	// fetchErr opens a source with settings and returns the error its
	// first Fetch ends with.
	fetchErr := func(t *testing.T, settings map[string]string) error {
		t.Helper()
		u, _ := url.Parse(k.SecureURL())
		settings[kafkaevents.SettingPingInterval] = "1s"
		s, err := kafkaevents.OpenSource(context.Background(), u, events.SourceOptions{Group: "bad-" + uniq(), Settings: settings})
		if err != nil {
			return err
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = s.Fetch(ctx, 1)
		if err == nil {
			t.Fatal("Fetch succeeded")
		}
		if ctx.Err() != nil {
			t.Fatalf("Fetch waited 30 s instead of failing: %v", err)
		}
		return err
	}
	publishErr := func(t *testing.T, settings map[string]string) error {
		t.Helper()
		u, _ := url.Parse(k.SecureURL())
		settings[kafkaevents.SettingDeliveryTimeout] = "3s"
		s, err := kafkaevents.OpenSink(context.Background(), u, events.SinkOptions{Settings: settings})
		if err != nil {
			return err
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = s.Publish(ctx, []events.Event{{Kind: events.Result, Tenant: "acme", Key: "t1", Value: []byte(`{}`)}})
		if err == nil {
			t.Fatal("Publish succeeded")
		}
		return err
	}
	t.Run("WrongPassword", func(t *testing.T) {
		for name, err := range map[string]error{
			"source": fetchErr(t, secure("SCRAM-SHA-512", "bob", "wrong", certs.CA)),
			"sink":   publishErr(t, secure("SCRAM-SHA-256", "alice", "wrong", certs.CA)),
		} {
			t.Logf("%s: %v", name, err)
			if !strings.Contains(strings.ToLower(err.Error()), "sasl authentication") {
				t.Errorf("%s: %v: does not name SASL authentication", name, err)
			}
			if !greyerr.Is(err, greyerr.PermissionDenied) {
				t.Errorf("%s: %v: code %s, want PermissionDenied", name, err, greyerr.CodeOf(err))
			}
		}
	})
	t.Run("UntrustedCertificate", func(t *testing.T) {
		other := testtls.New(t, "other")
		for name, err := range map[string]error{
			"source": fetchErr(t, secure("SCRAM-SHA-512", "bob", "bob-secret", other.CA)),
			"sink":   publishErr(t, secure("SCRAM-SHA-512", "bob", "bob-secret", other.CA)),
		} {
			t.Logf("%s: %v", name, err)
			if msg := err.Error(); !strings.Contains(msg, "TLS") || !strings.Contains(msg, "certificate") {
				t.Errorf("%s: %v: not a clear TLS error", name, err)
			}
			if !greyerr.Is(err, greyerr.Unauthenticated) {
				t.Errorf("%s: %v: code %s, want Unauthenticated", name, err, greyerr.CodeOf(err))
			}
		}
	})
}
