package testenv

import (
	"testing"
)

// fakeTB records Skip/Fatal without stopping the calling goroutine's test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skip(args ...any)      { f.skipped = true; f.msg = args[0].(string) }
func (f *fakeTB) Fatal(args ...any)     { f.failed = true; f.msg = args[0].(string) }
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestEnvVar(t *testing.T) {
	for in, want := range map[string]string{
		"postgres":   "GREY_TEST_POSTGRES_URL",
		"postgres2":  "GREY_TEST_POSTGRES2_URL",
		"otlp_query": "GREY_TEST_OTLP_QUERY_URL",
		"az-blob":    "GREY_TEST_AZ_BLOB_URL",
	} {
		if got := EnvVar(in); got != want {
			t.Errorf("EnvVar(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServiceURLSet(t *testing.T) {
	t.Setenv("GREY_TEST_DEMO_URL", "http://127.0.0.1:1")
	t.Setenv("CI", "true")
	f := &fakeTB{}
	if got := ServiceURL(f, "demo"); got != "http://127.0.0.1:1" || f.skipped || f.failed {
		t.Fatalf("got %q skipped=%v failed=%v", got, f.skipped, f.failed)
	}
}

func TestServiceURLUnsetSkipsOutsideCI(t *testing.T) {
	t.Setenv("GREY_TEST_DEMO_URL", "")
	t.Setenv("CI", "")
	f := &fakeTB{}
	ServiceURL(f, "demo")
	if !f.skipped || f.failed {
		t.Fatalf("skipped=%v failed=%v", f.skipped, f.failed)
	}
}

func TestServiceURLUnsetFailsInCI(t *testing.T) {
	t.Setenv("GREY_TEST_DEMO_URL", "")
	t.Setenv("CI", "true")
	f := &fakeTB{}
	ServiceURL(f, "demo")
	if !f.failed || f.skipped {
		t.Fatalf("skipped=%v failed=%v", f.skipped, f.failed)
	}
}

func TestKeycloakIssuer(t *testing.T) {
	t.Setenv("GREY_TEST_KEYCLOAK_URL", "http://127.0.0.1:18180/")
	if got := KeycloakIssuer(t); got != "http://127.0.0.1:18180/realms/grey" {
		t.Fatalf("KeycloakIssuer = %q", got)
	}
}
