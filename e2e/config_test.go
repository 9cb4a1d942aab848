package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestBadConfig checks that greyd refuses a broken --config at once, with a
// non-zero exit and an error naming the problem.
func TestBadConfig(t *testing.T) {
	requireE2E(t)
	cases := []struct {
		name   string
		config string
		want   []string // substrings of stderr
	}{
		{
			name:   "unknown key",
			config: "# a comment\ntasks:\n  lease_ttl: 2s\n  lease_tll: 3s\n",
			want:   []string{"lease_tll", "grey.yaml:4:"},
		},
		{
			name: "unset variable",
			// cleanEnv drops every GREY_* variable, so this one is unset.
			config: "node:\n  id: ${GREY_E2E_SURELY_UNSET_VAR}\n",
			want:   []string{"GREY_E2E_SURELY_UNSET_VAR", "grey.yaml:2:", "not set"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGreyd(t, tc.config)
			g.Start()
			code, ok := g.WaitExit(10 * time.Second)
			if !ok {
				g.Kill()
				t.Fatalf("greyd still running 10s after start with a bad config; stderr:\n%s", g.Stderr())
			}
			stderr := g.Stderr()
			if code == 0 {
				t.Errorf("greyd exited 0 with a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Stat(g.DataDir); err == nil {
				t.Errorf("greyd created its data dir %s although the config was rejected", g.DataDir)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		})
	}
}

// TestModeNoneRefusesAllInterfaces: the real greyd, without
// authentication, does not start on 0.0.0.0 and names auth.mode.
func TestModeNoneRefusesAllInterfaces(t *testing.T) {
	requireE2E(t)
	g := newGreyd(t, "")
	_, port, _ := strings.Cut(g.HTTPAddr, ":")
	g.HTTPAddr = "0.0.0.0:" + port
	g.Start()
	code, ok := g.WaitExit(10 * time.Second)
	if !ok {
		g.Kill()
		t.Fatalf("greyd in mode none is running on %s; stderr:\n%s", g.HTTPAddr, g.Stderr())
	}
	stderr := g.Stderr()
	if code != 2 || !strings.Contains(stderr, "auth.mode") || !strings.Contains(stderr, "0.0.0.0:"+port) {
		t.Fatalf("exit %d, stderr %q: want 2 and a message naming auth.mode and the address", code, stderr)
	}
	if _, err := os.Stat(g.DataDir); err == nil {
		t.Errorf("greyd created its data dir %s although it refused to start", g.DataDir)
	}
}
