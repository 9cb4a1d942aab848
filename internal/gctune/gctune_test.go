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
		{0, 100}, {128 << 20, 100}, {320 << 20, 75}, {512 << 20, 50}, {4 << 30, 50},
	} {
		if got := p.Percent(c.live); got != c.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
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
