package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line progress bar on a terminal while long work runs
// (snapshot save and restore, module push, bench). It is off (nil, and
// every method a no-op) when stderr is not a terminal, with -o json, or with
// GREY_NO_PROGRESS set, so scripts and pipes see no control characters.
type progress struct {
	w     io.Writer
	label string
	total int64 // 0: unknown
	bytes bool  // count bytes (else items)
	now   func() time.Time

	done atomic.Int64

	mu    sync.Mutex
	start time.Time
	drawn time.Time
	ended bool
}

// progressEvery bounds how often the bar is redrawn.
const progressEvery = 100 * time.Millisecond

// newProgress returns a bar labelled label counting up to total (0 when
// unknown) bytes or items, or nil when progress output is off.
func (a *app) newProgress(label string, total int64, bytes bool) *progress {
	if a.json() || a.getenv("GREY_NO_PROGRESS") != "" || !isTerminal(a.stderr) {
		return nil
	}
	return newProgressTo(a.stderr, label, total, bytes, time.Now)
}

// newProgressTo returns a bar drawn on w (for tests: any writer).
func newProgressTo(w io.Writer, label string, total int64, bytes bool, now func() time.Time) *progress {
	return &progress{w: w, label: label, total: total, bytes: bytes, now: now, start: now()}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add counts n more bytes or items and redraws the bar when it is due.
func (p *progress) Add(n int64) {
	if p == nil {
		return
	}
	p.done.Add(n)
	p.draw(false)
}

// Set sets the count (for work that reports totals, like bench).
func (p *progress) Set(n int64) {
	if p == nil {
		return
	}
	p.done.Store(n)
	p.draw(false)
}

// Finish draws the final state and ends the line.
func (p *progress) Finish() {
	if p == nil {
		return
	}
	p.draw(true)
}

func (p *progress) draw(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	now := p.now()
	if !final && now.Sub(p.drawn) < progressEvery {
		return
	}
	p.drawn = now
	line := p.render(now)
	if final {
		p.ended = true
		fmt.Fprintf(p.w, "\r\x1b[2K%s\n", line)
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[2K%s", line)
}

// render is the bar's text: label, bar and percentage when the total is
// known, the count, and the rate.
func (p *progress) render(now time.Time) string {
	done := p.done.Load()
	var b strings.Builder
	b.WriteString(p.label)
	if p.total > 0 {
		frac := min(float64(done)/float64(p.total), 1)
		const width = 24
		n := int(frac * width)
		fmt.Fprintf(&b, " [%s%s] %3.0f%%", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100)
		fmt.Fprintf(&b, " %s/%s", p.count(done), p.count(p.total))
	} else {
		fmt.Fprintf(&b, " %s", p.count(done))
	}
	if secs := now.Sub(p.start).Seconds(); secs > 0 {
		fmt.Fprintf(&b, " %s/s", p.count(int64(float64(done)/secs)))
	}
	return b.String()
}

func (p *progress) count(n int64) string {
	if !p.bytes {
		return fmt.Sprintf("%d", n)
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}

// Reader counts what is read through r.
func (p *progress) Reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

// Writer counts what is written through w.
func (p *progress) Writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return &progressWriter{w: w, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.Add(int64(n))
	return n, err
}

// Seek keeps a seekable reader seekable (a restore that fails over
// rewinds its file): the count follows the position.
func (r *progressReader) Seek(off int64, whence int) (int64, error) {
	s, ok := r.r.(io.Seeker)
	if !ok {
		return 0, fmt.Errorf("progress: reader cannot seek")
	}
	pos, err := s.Seek(off, whence)
	if err == nil {
		r.p.Set(pos)
	}
	return pos, err
}

type progressWriter struct {
	w io.Writer
	p *progress
}

func (w *progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.p.Add(int64(n))
	return n, err
}
