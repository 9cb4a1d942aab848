package audit_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/audit"
)

func TestFileSink(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	l.Count = func() { n++ }
	l.Write(audit.Event{Subject: "apikey:k1", Action: "task.submit", HTTPMethod: "POST", Route: "/api/v1/tasks", Tenant: "a", Outcome: audit.Allowed, Status: 201, RequestID: "r1"})
	l.Write(audit.Event{Action: "authenticate", HTTPMethod: "GET", Outcome: audit.Denied, Status: 401})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode %v, %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || n != 2 {
		t.Fatalf("%d lines, %d counted", len(lines), n)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "principal", "tenant", "action", "method", "route", "outcome", "status", "request_id"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("line lacks %q: %s", k, lines[0])
		}
	}
}

func TestOffAndNil(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "off"} {
		l, err := audit.Open(s)
		if err != nil || l != nil || l.Enabled() {
			t.Fatalf("%q: %v %v", s, l, err)
		}
		l.Write(audit.Event{}) // a nil log discards
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := audit.Open(filepath.Join(t.TempDir(), "no", "such", "dir", "a.log")); err == nil {
		t.Fatal("a file in a missing directory opened")
	}
}
