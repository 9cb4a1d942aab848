package console_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/task"
)

// axeVersion is the axe-core release the accessibility check injects.
const axeVersion = "4.10.3"

// needTool skips the test without what it needs, or fails it in CI.
func needTool(t *testing.T, msg string) {
	t.Helper()
	if testenv.InCI() {
		t.Fatal("CI=true and " + msg)
	}
	t.Skip(msg)
}

// chromiumPath finds Debian's chromium (GREY_CHROMIUM overrides).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GREY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	needTool(t, "no chromium on PATH: install it with `scripts/services.sh tools` (Debian package chromium) or set GREY_CHROMIUM")
	return ""
}

// axeSource returns axe.min.js: from GREY_AXE_JS, or from a cache dir
// outside the repository ($GREY_SERVICES_CACHE, /opt/grey-services or the
// user cache), fetched there with `npm pack axe-core@axeVersion` once.
func axeSource(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GREY_AXE_JS"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var dirs []string
	if d := os.Getenv("GREY_SERVICES_CACHE"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, "/opt/grey-services")
	if d, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(d, "grey-services"))
	}
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "axe-core-"+axeVersion, "axe.min.js")); err == nil {
			return string(b)
		}
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		needTool(t, "axe-core "+axeVersion+" is not cached and npm is missing: run `scripts/services.sh tools`")
	}
	for _, d := range dirs {
		dir := filepath.Join(d, "axe-core-"+axeVersion)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			continue
		}
		cmd := exec.Command(npm, "pack", "--silent", "axe-core@"+axeVersion)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			needTool(t, fmt.Sprintf("npm pack axe-core@%s: %v\n%s", axeVersion, err, out))
		}
		src, err := untarFile(filepath.Join(dir, "axe-core-"+axeVersion+".tgz"), "package/axe.min.js")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "axe.min.js"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		return string(src)
	}
	needTool(t, "no writable cache dir for axe-core")
	return ""
}

func untarFile(tgz, name string) ([]byte, error) {
	f, err := os.Open(tgz)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", name, tgz, err)
		}
		if h.Name == name {
			return io.ReadAll(tr)
		}
	}
}

// artifactsDir is where screenshots go: $GREY_TEST_ARTIFACTS/console, or
// the test's temp dir. GREY_CONSOLE_DOCS=1 also writes them to
// docs/console/ (the copies docs/CONSOLE.md shows).
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("GREY_TEST_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "console")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// In a real browser against a greyd with data: every page loads and passes
// axe-core with no serious or critical finding; a task submitted through
// the form completes on its page without a reload (live update); a
// running task is cancelled with its button; a failed task is retried
// as a new task; screenshots of each page are kept.
func TestBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	axe := axeSource(t)
	g := startGreyd(t, func(cfg *config.Config) {
		cfg.Proofs.Enabled = true
		cfg.Tenants.Cost.Prices = config.PricesConfig{CPUSecondUSD: 0.00002, TaskUSD: 0.000001, GBMovedUSD: 0.09}
	})
	ctx := context.Background()
	c := g.client(t, "acme", "")
	mustSubmit := func(spec task.Spec) *task.Task {
		t.Helper()
		tk, err := c.Submit(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	// Data: finished, failed, long-running, and a small pipeline.
	for i := range 5 {
		mustSubmit(task.Spec{Kind: "echo", Payload: json.RawMessage(fmt.Sprintf(`{"image":{"format":"png","n":%d},"note":"%s"}`, i, strings.Repeat("lorem ipsum ", 30)))})
	}
	failed := mustSubmit(task.Spec{Kind: "fail", Payload: json.RawMessage(`{"message":"disk full","retryable":false}`)})
	long := mustSubmit(task.Spec{Kind: "sleep", Payload: json.RawMessage(`{"ms":120000}`)})
	a := mustSubmit(task.Spec{Kind: "echo", Payload: json.RawMessage(`{"step":"extract"}`)})
	b := mustSubmit(task.Spec{Kind: "echo", Payload: json.RawMessage(`{"step":"transform"}`), DependsOn: []string{a.ID}})
	p := mustSubmit(task.Spec{Kind: "echo", Payload: json.RawMessage(`{"step":"load"}`), DependsOn: []string{a.ID, b.ID}})
	if _, err := c.Wait(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Wait(ctx, failed.ID); err != nil || got.Status != task.Failed {
		t.Fatalf("fail task: %v %v", got, err)
	}
	other := g.client(t, "globex", "")
	if _, err := other.Submit(ctx, task.Spec{Kind: "noop"}); err != nil {
		t.Fatal(err)
	}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", chrome, err)
	}
	dir := artifactsDir(t)
	docs := os.Getenv("GREY_CONSOLE_DOCS") == "1"
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// check runs axe on the current page and saves its screenshot.
	check := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Evaluate[chromedp.Void](axe)); err != nil {
			t.Fatalf("%s: inject axe: %v", name, err)
		}
		raw, err := chromedp.Run(sctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: axe.run: %v", name, err)
		}
		var vs []axeViolation
		if err := json.Unmarshal([]byte(raw), &vs); err != nil {
			t.Fatalf("%s: axe result %q: %v", name, raw, err)
		}
		for _, v := range vs {
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("%s: axe %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, v.Nodes)
			} else {
				t.Logf("%s: axe %s (%s): %s", name, v.ID, v.Impact, v.Help)
			}
		}
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		if docs {
			if err := os.WriteFile(filepath.Join("..", "docs", "console", name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	// waitText polls the predicate js until it is true, through the
	// navigations a form's POST and redirect cause.
	waitText := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(25 * time.Second)
		var last error
		for time.Now().Before(deadline) {
			sctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`!!(`+js+`)`))
			cancel()
			if err == nil && ok {
				return
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: not true after 25s (last error %v): %s", what, last, js)
	}
	base := g.base

	// Overview.
	run("overview", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#live-overview table")))
	check("overview")

	// Tasks: the list, then a task submitted through the form completes
	// on its page while the page stays loaded (the live update).
	run("tasks", chromedp.Navigate(base+"/ui/tasks?tenant=acme"), chromedp.WaitVisible(chromedp.CSS("#tasks")))
	check("tasks")
	run("submit",
		chromedp.SetValue(chromedp.CSS("#s-kind"), "sleep"),
		chromedp.SetValue(chromedp.CSS("#s-payload"), `{"ms": 2500}`),
		chromedp.Click(chromedp.CSS("#submit-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#task-status")),
	)
	if st := text("#task-status"); st == "completed" {
		t.Fatalf("the 2.5 s task is already %s on its first load: the live update is not observed", st)
	}
	run("mark", chromedp.Evaluate[chromedp.Void](`window.__greyNoReload = true`))
	waitText("live update to completed", `document.querySelector("#task-status") && document.querySelector("#task-status").textContent.trim() === "completed" && window.__greyNoReload === true`)
	if v := text("#proof-status"); v != "verified" {
		t.Fatalf("proof of the completed task: %q", v)
	}
	check("task")
	run("replay", chromedp.Click(chromedp.CSS("#replay-btn")), chromedp.WaitVisible(chromedp.CSS("#replay")))
	if v := text("#replay-match"); v != "match" {
		t.Fatalf("replay of the completed sleep task: %q", v)
	}

	// Cancel the long task with its button.
	run("open long task", chromedp.Navigate(base+"/ui/tasks/"+long.ID+"?tenant=acme"), chromedp.WaitVisible(chromedp.CSS("#cancel")),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS("#cancel")))
	waitText("cancelled", `document.querySelector("#task-status") && document.querySelector("#task-status").textContent.trim() === "cancelled"`)
	if got, err := c.Get(ctx, long.ID); err != nil || got.Status != task.Cancelled {
		t.Fatalf("after the cancel button: %v %v", got, err)
	}

	// Retry the failed task: a new task with the same spec.
	run("open failed task", chromedp.Navigate(base+"/ui/tasks/"+failed.ID+"?tenant=acme"), chromedp.WaitVisible(chromedp.CSS("#task-error")))
	check("task-failed")
	run("retry", chromedp.Click(chromedp.CSS("#retry")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loc, "retried_from="+failed.ID) || strings.Contains(loc, "/tasks/"+failed.ID) {
		t.Fatalf("after retry at %s", loc)
	}
	waitText("retried task fails again", `document.querySelector("#task-status") && document.querySelector("#task-status").textContent.trim() === "failed"`)

	// Search by id from the tasks page.
	run("search", chromedp.Navigate(base+"/ui/tasks?tenant=acme"), chromedp.SetValue(chromedp.CSS("#id"), p.ID),
		chromedp.Submit(chromedp.CSS("#id")), chromedp.WaitVisible(chromedp.CSS("#task-status")))
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); !strings.Contains(loc, "/ui/tasks/"+p.ID) {
		t.Fatalf("search by id landed on %s", loc)
	}

	// The pipeline seen from its first task finds the tasks depending on it.
	run("pipeline from the root", chromedp.Navigate(base+"/ui/tasks/"+a.ID+"/pipeline?tenant=acme"), chromedp.WaitVisible(chromedp.CSS("svg.dag")))
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.dag a").length`)); err != nil || n != 3 {
		t.Fatalf("pipeline from %s: %d tasks drawn (%v), want 3", a.ID, n, err)
	}

	// The other pages.
	for _, pg := range []struct{ name, path, sel string }{
		{"pipeline", "/ui/tasks/" + p.ID + "/pipeline?tenant=acme", "svg.dag"},
		{"tenants", "/ui/tenants", "svg.bars"},
		{"tenant", "/ui/tenants/acme", "svg.spark"},
		{"cluster", "/ui/cluster", "table"},
	} {
		run(pg.name, chromedp.Navigate(base+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.sel)))
		check(pg.name)
	}
	t.Logf("screenshots in %s", dir)
}
