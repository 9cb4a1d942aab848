package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestModeNoneRefusesNonLoopback: greyd without authentication does not
// start on an address beyond loopback, and says which setting to change.
func TestModeNoneRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--http-addr", "0.0.0.0:8080"},
		{"--http-addr", "10.1.2.3:8080"},
		{"--raft-addr", "0.0.0.0:7000"},
		{"--metrics-addr", "0.0.0.0:9090"},
		{"--role", "worker", "--servers", "http://127.0.0.1:1", "--metrics-addr", "0.0.0.0:9090"},
	} {
		var out, errb bytes.Buffer
		args = append(args, "--data-dir", filepath.Join(t.TempDir(), "d"))
		code := run(args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "auth.mode") || !strings.Contains(errb.String(), "loopback") {
			t.Fatalf("greyd %v: exit %d, stderr %q; want 2 and a message naming auth.mode", args, code, errb.String())
		}
	}
}
