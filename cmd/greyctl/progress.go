package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressBar draws one self-rewriting line on a terminal; on anything
// else (a pipe, a file, -o json) it draws nothing.
type progressBar struct {
	w     io.Writer
	on    bool
	last  time.Time
	width int
}

// newProgress returns a bar on w when w is a terminal and the output is
// not JSON.
func (a *app) newProgress(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	on := ok && term.IsTerminal(int(f.Fd())) && !a.json()
	return &progressBar{w: w, on: on, width: 30}
}

// update redraws the bar (at most 10 times a second): done of total units
// (total 0: no bar, just the text) and a status text.
func (p *progressBar) update(done, total int, text string) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	bar := ""
	if total > 0 {
		n := min(p.width, p.width*done/total)
		bar = fmt.Sprintf("[%s%s] %3d%% ", strings.Repeat("=", n), strings.Repeat(" ", p.width-n), 100*done/total)
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s%s", bar, text)
}

// done clears the bar's line.
func (p *progressBar) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
