package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressRendersAndThrottles(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := newProgressTo(&out, "upload", 4<<20, true, clk.now)
	clk.t = clk.t.Add(time.Second)
	p.Add(1 << 20)
	if got := out.String(); !strings.Contains(got, "upload [======                  ]  25% 1.0 MiB/4.0 MiB 1.0 MiB/s") {
		t.Fatalf("bar = %q", got)
	}
	n := out.Len()
	p.Add(1) // within progressEvery of the last draw: not redrawn
	if out.Len() != n {
		t.Fatalf("redrawn within %s: %q", progressEvery, out.String()[n:])
	}
	clk.t = clk.t.Add(time.Second)
	p.Set(4 << 20)
	p.Finish()
	p.Finish() // once
	if got := out.String(); !strings.HasSuffix(got, "100% 4.0 MiB/4.0 MiB 2.0 MiB/s\n") || strings.Count(got, "\n") != 1 {
		t.Fatalf("final = %q", got)
	}
}

func TestProgressUnknownTotalAndItems(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0)}
	p := newProgressTo(&out, "bench", 0, false, clk.now)
	clk.t = clk.t.Add(2 * time.Second)
	p.Set(500)
	if got := out.String(); !strings.HasSuffix(got, "bench 500 250/s") {
		t.Fatalf("bar = %q", got)
	}
	b := newProgressTo(&out, "x", 0, true, clk.now)
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := b.count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestProgressNilIsOff(t *testing.T) {
	var p *progress
	p.Add(1)
	p.Set(2)
	p.Finish()
	r := strings.NewReader("abc")
	if p.Reader(r) != io.Reader(r) {
		t.Fatal("nil progress wrapped a reader")
	}
	var w bytes.Buffer
	if p.Writer(&w) != io.Writer(&w) {
		t.Fatal("nil progress wrapped a writer")
	}
}

func TestProgressOffWhenNotATerminalOrJSON(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := func(string) string { return "" }
	for _, a := range []*app{
		{stderr: &bytes.Buffer{}, getenv: env},                          // a pipe or buffer
		{stderr: f, getenv: env},                                        // a file
		{stderr: f, getenv: env, output: "json"},                        // -o json
		{stderr: os.Stderr, getenv: func(string) string { return "1" }}, // GREY_NO_PROGRESS
	} {
		if p := a.newProgress("x", 1, true); p != nil {
			t.Errorf("progress on for stderr %T, output %q", a.stderr, a.output)
		}
	}
}

func TestProgressCountsReadsWritesAndSeeks(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0)}
	p := newProgressTo(&out, "x", 10, true, clk.now)
	data, err := io.ReadAll(p.Reader(strings.NewReader("0123456789")))
	if err != nil || string(data) != "0123456789" || p.done.Load() != 10 {
		t.Fatalf("read %q, %v, counted %d", data, err, p.done.Load())
	}
	rs := p.Reader(strings.NewReader("0123456789")).(io.ReadSeeker)
	if _, err := rs.Seek(4, io.SeekStart); err != nil || p.done.Load() != 4 {
		t.Fatalf("seek: %v, counted %d", err, p.done.Load())
	}
	if _, err := p.Reader(bytes.NewBufferString("x")).(io.Seeker).Seek(0, io.SeekCurrent); err == nil {
		t.Fatal("seek of a reader that cannot seek succeeded")
	}
	var w bytes.Buffer
	if _, err := io.WriteString(p.Writer(&w), "abc"); err != nil || w.String() != "abc" || p.done.Load() != 7 {
		t.Fatalf("write %q, %v, counted %d", w.String(), err, p.done.Load())
	}
}

// The completion scripts docs/OPERATIONS.md tells users to install.
func TestShellCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_greyctl", "zsh": "#compdef greyctl", "fish": "complete -c greyctl"} {
		var out, errb bytes.Buffer
		if code := run(t.Context(), []string{"completion", shell}, strings.NewReader(""), &out, &errb, func(string) string { return "" }); code != 0 {
			t.Fatalf("completion %s: exit %d: %s", shell, code, errb.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("completion %s lacks %q", shell, want)
		}
	}
	var out, errb bytes.Buffer
	run(t.Context(), []string{"__complete", "task", "s"}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if !strings.Contains(out.String(), "submit") {
		t.Errorf("completing \"task s\" = %q, want submit", out.String())
	}
}
