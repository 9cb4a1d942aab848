package events_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

func TestRegistry(t *testing.T) {
	reg := events.NewRegistry()
	refused := events.OpenerFuncs{Source: func(_ context.Context, u *url.URL, _ events.SourceOptions) (events.SourceDriver, error) {
		return nil, greyerr.Wrap(greyerr.Unavailable, errors.New("dial "+u.String()+": connection refused"), "connect")
	}}
	if err := reg.Register("AMQP", refused); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register("amqp", refused); err == nil {
		t.Fatal("a scheme registered twice")
	}
	if err := reg.Register("", refused); err == nil {
		t.Fatal("empty scheme registered")
	}
	if s := reg.Schemes(); len(s) != 1 || s[0] != "amqp" {
		t.Fatalf("schemes %v", s)
	}
	ctx := context.Background()
	for _, bad := range []string{"kafka://localhost:9092", "localhost:9092", "::"} {
		if err := reg.Check(bad); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("Check(%q) = %v, want InvalidArgument", bad, err)
		}
		if _, err := reg.OpenSource(ctx, bad, events.SourceOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("OpenSource(%q) = %v", bad, err)
		}
	}
	if err := reg.Check("amqp://grey:s3cret@rabbit:5671/"); err != nil {
		t.Fatal(err)
	}
	_, err := reg.OpenSource(ctx, "amqp://grey:s3cret@rabbit:5672/", events.SourceOptions{})
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("open on a refusing broker: %v, want Unavailable", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
	_, err = reg.OpenSink(ctx, "amqp://grey:s3cret@rabbit:5672/", events.SinkOptions{})
	if !greyerr.Is(err, greyerr.Unimplemented) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("open of a missing sink side: %v", err)
	}
	if r := events.Redact("amqp://grey:s3cret@rabbit/"); strings.Contains(r, "s3cret") {
		t.Fatalf("Redact: %s", r)
	}
}
