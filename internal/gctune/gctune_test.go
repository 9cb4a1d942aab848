package gctune

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPercent(t *testing.T) {
	p := DefaultPolicy
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 1000}, {16 << 20, 1000}, {128 << 20, 700}, {256 << 20, 300}, {512 << 20, 100},
		{700 << 20, 50}, {1 << 30, 50}, {4 << 30, 50},
	} {
		if got := p.Percent(c.live); got != c.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

func TestWithinALimit(t *testing.T) {
	p := DefaultPolicy.within(1 << 30)
	if p.Target != (1<<30)/100*45 {
		t.Fatalf("Target under a 1 GiB limit = %d MiB, want 45%%", p.Target>>20)
	}
	if got := p.Percent(400 << 20); got != p.Low {
		t.Errorf("Percent(400 MiB) under a 1 GiB limit = %d, want the floor %d", got, p.Low)
	}
	if q := DefaultPolicy.within(64 << 30); q.Target != DefaultPolicy.Target {
		t.Errorf("a 64 GiB limit moved Target to %d MiB", q.Target>>20)
	}
}

func TestCgroupLimit(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]uint64{"max\n": 0, "1073741824\n": 1 << 30, "junk": 0} {
		f := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, ok := cgroupLimit(f)
		if ok != (want != 0) || got != want {
			t.Errorf("%q: got %d %v, want %d", content, got, ok, want)
		}
	}
	if _, ok := cgroupLimit(filepath.Join(dir, "absent")); ok {
		t.Error("absent file has a limit")
	}
}
