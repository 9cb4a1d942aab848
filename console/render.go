package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// parseTemplates parses each page with the layout.
func (c *Console) parseTemplates() error {
	funcs := template.FuncMap{
		"json":     prettyJSON,
		"jsonv":    func(v any) template.HTML { b, _ := json.Marshal(v); return prettyJSON(b) },
		"since":    func(t time.Time) string { return since(c.opts.Now(), t) },
		"ts":       fmtTime,
		"tsp":      func(t *time.Time) string { return fmtTimeP(t) },
		"dur":      fmtDur,
		"spark":    sparkline,
		"bars":     bars,
		"timeline": func(t *task.Task) template.HTML { return timeline(t, c.opts.Now()) },
		"usd":      func(f float64) string { return fmt.Sprintf("$%.4f", f) },
		"usdp":     func(f *float64) string { return fmtUSDP(f) },
		"num":      func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
		"rate":     func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"bytes":    fmtBytes,
		"has":      func(list []string, s string) bool { return slices.Contains(list, s) },
		"short":    func(s string) string { return shortID(s) },
		"tq":       func(t string) string { return tenantParam(t) },
		"sum": func(v []float64) float64 {
			var s float64
			for _, x := range v {
				s += x
			}
			return s
		},
		"statusCls": func(s task.Status) string { return "st-" + string(s) },
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return greyerr.Wrap(greyerr.Internal, err, "console: layout template")
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return greyerr.Wrap(greyerr.Internal, err, "console: templates")
	}
	c.pages = map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return greyerr.Wrap(greyerr.Internal, err, "console: template %s", name)
		}
		c.pages[name] = t
	}
	return nil
}

func tenantParam(t string) string {
	if t == "" {
		return ""
	}
	return "tenant=" + t
}

func shortID(s string) string {
	if len(s) > 13 {
		return s[:8] + "…" + s[len(s)-4:]
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func fmtTimeP(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return fmtTime(*t)
}

func fmtUSDP(f *float64) string {
	if f == nil {
		return "—"
	}
	return fmt.Sprintf("$%.6f", *f)
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmtDur(now.Sub(t)) + " ago"
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ------------------------------------------------------------ pretty JSON

// Values whose JSON is longer than these are collapsed (<details>).
const (
	collapseBytes  = 400
	collapseString = 160
)

// prettyJSON renders JSON as indented, escaped HTML; objects, arrays and
// strings over the collapse limits are folded in <details>, which opens
// without script. Invalid JSON is shown as escaped text.
func prettyJSON(raw json.RawMessage) template.HTML {
	if len(raw) == 0 {
		return template.HTML(`<span class="muted">none</span>`)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return template.HTML("<pre>" + html.EscapeString(string(raw)) + "</pre>")
	}
	var b strings.Builder
	b.WriteString(`<pre class="json">`)
	writeJSON(&b, v, 0)
	b.WriteString("</pre>")
	return template.HTML(b.String()) //nolint:gosec // every piece of text is escaped in writeJSON
}

func writeJSON(b *strings.Builder, v any, depth int) {
	ind := strings.Repeat("  ", depth)
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			b.WriteString("{}")
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		size := jsonSize(x)
		open := size <= collapseBytes || depth == 0
		if !open {
			fmt.Fprintf(b, `<details><summary>{…} %d keys, %s</summary>`, len(x), fmtBytes(int64(size)))
		}
		b.WriteString("{\n")
		for i, k := range keys {
			b.WriteString(ind + "  " + `<span class="k">` + html.EscapeString(strconv.Quote(k)) + "</span>: ")
			writeJSON(b, x[k], depth+1)
			if i < len(keys)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(ind + "}")
		if !open {
			b.WriteString("</details>")
		}
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return
		}
		size := jsonSize(x)
		open := size <= collapseBytes || depth == 0 && len(x) <= 20
		if !open {
			fmt.Fprintf(b, `<details><summary>[…] %d items, %s</summary>`, len(x), fmtBytes(int64(size)))
		}
		b.WriteString("[\n")
		for i, e := range x {
			b.WriteString(ind + "  ")
			writeJSON(b, e, depth+1)
			if i < len(x)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(ind + "]")
		if !open {
			b.WriteString("</details>")
		}
	case string:
		q := strconv.Quote(x)
		if len(x) > collapseString {
			fmt.Fprintf(b, `<details class="str"><summary><span class="s">%s…"</span> %d chars</summary><span class="s">%s</span></details>`,
				html.EscapeString(strconv.Quote(x[:60])[:len(strconv.Quote(x[:60]))-1]), len(x), html.EscapeString(q))
			return
		}
		b.WriteString(`<span class="s">` + html.EscapeString(q) + "</span>")
	case json.Number:
		b.WriteString(`<span class="n">` + html.EscapeString(x.String()) + "</span>")
	case bool:
		b.WriteString(`<span class="b">` + strconv.FormatBool(x) + "</span>")
	case nil:
		b.WriteString(`<span class="b">null</span>`)
	}
}

func jsonSize(v any) int {
	out, _ := json.Marshal(v)
	return len(out)
}

// ------------------------------------------------------------------- SVG

// sparkline draws values as a polyline with an area under it; label is
// its accessible name.
func sparkline(values []float64, label string) template.HTML {
	const w, h = 160.0, 32.0
	if len(values) == 0 {
		return ""
	}
	max := 0.0
	for _, v := range values {
		max = math.Max(max, v)
	}
	if max == 0 {
		max = 1
	}
	step := w / math.Max(1, float64(len(values)-1))
	var pts strings.Builder
	for i, v := range values {
		fmt.Fprintf(&pts, "%.1f,%.1f ", float64(i)*step, h-1-(v/max)*(h-2))
	}
	p := strings.TrimSpace(pts.String())
	return template.HTML(fmt.Sprintf( //nolint:gosec // the label is escaped, the rest are numbers
		`<svg class="spark" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f"><title>%s</title><polygon class="area" points="0,%.0f %s %.1f,%.0f"/><polyline points="%s"/></svg>`,
		html.EscapeString(label), w, h, w, h, html.EscapeString(label), h, p, float64(len(values)-1)*step, h, p))
}

// bar is one bar of a bar chart.
type bar struct {
	Label string
	Value float64
}

// bars draws a horizontal bar chart of items, each labelled with its value.
func bars(items []bar, unit, label string) template.HTML {
	if len(items) == 0 {
		return ""
	}
	const w, row = 480.0, 22.0
	max := 0.0
	for _, it := range items {
		max = math.Max(max, it.Value)
	}
	if max == 0 {
		max = 1
	}
	h := row * float64(len(items))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="bars" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f"><title>%s</title>`,
		html.EscapeString(label), w, h, w, h, html.EscapeString(label))
	for i, it := range items {
		y := float64(i) * row
		bw := (it.Value / max) * (w - 230)
		fmt.Fprintf(&b, `<text x="0" y="%.0f">%s</text><rect x="120" y="%.0f" width="%.1f" height="%.0f"/><text x="%.1f" y="%.0f">%s %s</text>`,
			y+15, html.EscapeString(shortID(it.Label)), y+4, math.Max(bw, 1), row-8, 126+bw, y+15,
			html.EscapeString(strconv.FormatFloat(it.Value, 'g', 6, 64)), html.EscapeString(unit))
	}
	b.WriteString("</svg>")
	return template.HTML(b.String()) //nolint:gosec // text is escaped
}

// timeline draws a task's attempts on a time axis: from creation to its
// end (or now), one lane per attempt from lease to finish.
func timeline(t *task.Task, now time.Time) template.HTML {
	start := t.CreatedAt
	end := now
	if t.FinishedAt != nil {
		end = *t.FinishedAt
	}
	if !end.After(start) {
		end = start.Add(time.Millisecond)
	}
	span := end.Sub(start).Seconds()
	const w, lane, left = 600.0, 22.0, 90.0
	x := func(tm time.Time) float64 { return left + (tm.Sub(start).Seconds()/span)*(w-left-10) }
	h := lane * float64(len(t.Attempts)+2)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="timeline" role="img" aria-label="attempts of task %s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f"><title>Attempts over %s</title>`,
		html.EscapeString(t.ID), w, h, w, h, fmtDur(end.Sub(start)))
	fmt.Fprintf(&b, `<text x="0" y="15">created</text><line x1="%.1f" y1="4" x2="%.1f" y2="%.0f" class="axis"/>`, left, left, h)
	for i, a := range t.Attempts {
		y := lane * float64(i+1)
		aEnd := end
		if a.FinishedAt != nil {
			aEnd = *a.FinishedAt
		}
		cls := "ok"
		if a.Error != nil {
			cls = "err"
		} else if a.FinishedAt == nil {
			cls = "run"
		}
		x0, x1 := x(a.LeasedAt), x(aEnd)
		title := fmt.Sprintf("attempt %d on %s: leased %s, %s", a.N, a.WorkerID, fmtTime(a.LeasedAt), fmtDur(aEnd.Sub(a.LeasedAt)))
		if a.Error != nil {
			title += ": " + a.Error.Message
		}
		fmt.Fprintf(&b, `<g><title>%s</title><text x="0" y="%.0f">attempt %d</text><rect class="%s" x="%.1f" y="%.0f" width="%.1f" height="%.0f"/></g>`,
			html.EscapeString(title), y+15, a.N, cls, x0, y+4, math.Max(x1-x0, 2), lane-8)
	}
	fmt.Fprintf(&b, `<text x="0" y="%.0f">%s</text><text x="%.0f" y="%.0f" text-anchor="end">+%s</text></svg>`,
		h-5, html.EscapeString(string(t.Status)), w-10, h-5, html.EscapeString(fmtDur(end.Sub(start))))
	return template.HTML(b.String()) //nolint:gosec // text is escaped
}

// dag is a laid-out depends_on graph.
type dag struct {
	SVG   template.HTML
	Nodes int
	Edges int
}

// layoutDAG places tasks in columns by their depth (longest chain of
// dependencies below them) and draws edges from a dependency to its
// dependant; nil tasks are missing (collected) dependencies. The root
// (the task the page is about) is drawn bold.
func layoutDAG(tasks map[string]*task.Task, root, tq string) *dag {
	depth := map[string]int{}
	var level func(id string, seen map[string]bool) int
	level = func(id string, seen map[string]bool) int {
		if d, ok := depth[id]; ok {
			return d
		}
		if seen[id] {
			return 0 // a cycle cannot be submitted; never loop
		}
		seen[id] = true
		d := 0
		if t := tasks[id]; t != nil {
			for _, dep := range t.DependsOn {
				if _, ok := tasks[dep]; ok {
					d = max(d, level(dep, seen)+1)
				}
			}
		}
		depth[id] = d
		return d
	}
	ids := make([]string, 0, len(tasks))
	for id := range tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	cols := map[int][]string{}
	maxCol, maxRow := 0, 0
	for _, id := range ids {
		d := level(id, map[string]bool{})
		cols[d] = append(cols[d], id)
		maxCol = max(maxCol, d)
		maxRow = max(maxRow, len(cols[d]))
	}
	const cw, ch, nw, nh = 200.0, 56.0, 170.0, 40.0
	pos := map[string][2]float64{}
	for c, list := range cols {
		for r, id := range list {
			pos[id] = [2]float64{10 + float64(c)*cw, 10 + float64(r)*ch}
		}
	}
	w, h := 20+float64(maxCol+1)*cw, 20+float64(maxRow)*ch+nh/2
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="dag" role="group" aria-label="depends_on graph of %d tasks" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f"><title>depends_on graph</title>`,
		len(tasks), w, h, w, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>`)
	edges := 0
	for _, id := range ids {
		t := tasks[id]
		if t == nil {
			continue
		}
		to := pos[id]
		for _, dep := range t.DependsOn {
			from, ok := pos[dep]
			if !ok {
				continue
			}
			edges++
			x1, y1, x2, y2 := from[0]+nw, from[1]+nh/2, to[0], to[1]+nh/2
			if x2-x1 <= cw-nw+1 || y1 != y2 {
				fmt.Fprintf(&b, `<line class="edge" x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" marker-end="url(#arrow)"/>`, x1, y1, x2, y2)
				continue
			}
			// Over columns in between on the same row: arc below the
			// boxes, so the edge is not hidden behind them.
			fmt.Fprintf(&b, `<path class="edge" d="M%.0f,%.0f C%.0f,%.0f %.0f,%.0f %.0f,%.0f" fill="none" marker-end="url(#arrow)"/>`,
				x1-nw/2, y1+nh/2, x1-nw/2, y1+nh, x2+nw/2, y2+nh, x2+nw/2, y2+nh/2)
		}
	}
	for _, id := range ids {
		p := pos[id]
		t := tasks[id]
		status, kind := "missing", "collected"
		if t != nil {
			status, kind = string(t.Status), t.Kind
		}
		cls := status
		if id == root {
			cls += " root"
		}
		fmt.Fprintf(&b, `<a href="%s" aria-label="task %s, %s, %s"><g class="node st-%s"><title>%s %s (%s)</title><rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" rx="4"/><text x="%.0f" y="%.0f">%s</text><text x="%.0f" y="%.0f">%s · %s</text></g></a>`,
			html.EscapeString(Prefix+"tasks/"+id+tq), html.EscapeString(id), html.EscapeString(kind), html.EscapeString(status),
			html.EscapeString(cls), html.EscapeString(kind), html.EscapeString(id), html.EscapeString(status),
			p[0], p[1], nw, nh, p[0]+6, p[1]+16, html.EscapeString(shortID(id)), p[0]+6, p[1]+32, html.EscapeString(kind), html.EscapeString(status))
	}
	b.WriteString("</svg>")
	return &dag{SVG: template.HTML(b.String()), Nodes: len(tasks), Edges: edges} //nolint:gosec // text is escaped
}
