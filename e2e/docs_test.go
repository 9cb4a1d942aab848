package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/task"
)

// The docs test runs every shell example of README.md and docs/*.md that
// calls curl or greyctl, as written, against a real greyd, so the examples
// a new user copies work.
//
// A block is a fenced ```sh, ```bash, ```shell or ```console block (in a
// console block, lines starting with "$ " are the commands; the rest is
// output). An HTML comment on the line before the fence (blank lines
// between allowed) steers it:
//
//	<!-- docs-test: skip (why) -->        not run; say why
//	<!-- docs-test: expect-status 401 --> HTTP statuses (4xx) the block shows on purpose
//	<!-- docs-test: fails -->             the block must end in failure (its last command shows an error)
//
// Each block runs in bash with set -eo pipefail in its own directory, with
// greyd and greyctl of this tree first on PATH (and in ./bin), GREY_SERVER
// and the localhost:8080 / localhost:9090 of the text pointing at the test's
// greyd, and go building from the repository. Blocks of one file share one
// greyd, in order, as a reader following the page would; a block that
// starts its own greyd (a line "greyd … &") gets fresh addresses and data
// instead (through GREY_HTTP_ADDR, GREY_RAFT_ADDR, GREY_METRICS_ADDR,
// GREY_DATA_DIR), and the test waits for it to be ready after that line.
// curl is wrapped to record each response's status: a 5xx always fails the
// block, a 4xx unless the block expects it.

// docBlock is one shell example.
type docBlock struct {
	file   string
	line   int
	lang   string
	text   string
	skip   string // reason; "" runs it
	expect []int  // expected 4xx statuses
	fails  bool
}

var (
	fenceRe     = regexp.MustCompile("(?m)^```(sh|bash|shell|console)[ \t]*\n")
	directiveRe = regexp.MustCompile(`<!--\s*docs-test:\s*(.*?)\s*-->\s*$`)
	usesCLIRe   = regexp.MustCompile(`(^|[\s;|&($])(bin/)?(curl|greyctl)\s`)
	ownServerRe = regexp.MustCompile(`^\s*((bin/)?greyd|go run \./cmd/greyd)(\s[^|]*)?&\s*(#.*)?$`)
)

// docBlocks extracts the shell examples of the markdown files under root.
func docBlocks(t *testing.T, root string) []docBlock {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var out []docBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		rel, _ := filepath.Rel(root, f)
		for _, m := range fenceRe.FindAllStringSubmatchIndex(src, -1) {
			body := src[m[1]:]
			end := strings.Index(body, "\n```")
			if end < 0 {
				t.Fatalf("%s: unterminated code block", rel)
			}
			body = body[:end+1]
			if !usesCLIRe.MatchString(body) {
				continue
			}
			blk := docBlock{file: rel, line: strings.Count(src[:m[0]], "\n") + 1, lang: src[m[2]:m[3]], text: body}
			// The directive: the last non-blank line before the fence.
			before := strings.TrimRight(src[:m[0]], " \t\n")
			if i := strings.LastIndexByte(before, '\n'); i >= 0 {
				before = before[i+1:]
			}
			if d := directiveRe.FindStringSubmatch(before); d != nil {
				switch word, arg, _ := strings.Cut(d[1], " "); word {
				case "skip":
					blk.skip = strings.Trim(strings.TrimSpace(arg), "()")
					if blk.skip == "" {
						t.Fatalf("%s:%d: docs-test skip without a reason", rel, blk.line)
					}
				case "expect-status":
					for _, f := range strings.Fields(arg) {
						n, err := strconv.Atoi(f)
						if err != nil || n < 400 || n > 499 {
							t.Fatalf("%s:%d: docs-test expect-status %q: want 4xx codes", rel, blk.line, arg)
						}
						blk.expect = append(blk.expect, n)
					}
				case "fails":
					blk.fails = true
				default:
					t.Fatalf("%s:%d: unknown docs-test directive %q", rel, blk.line, d[1])
				}
			}
			out = append(out, blk)
		}
	}
	return out
}

// script turns a block into the commands to run: console prompts
// stripped, output lines dropped, the text's addresses replaced, and a
// readiness wait after each line that starts a greyd in the background.
func (b docBlock) script(httpAddr, metricsAddr string) (string, bool) {
	var lines []string
	own := false
	for _, l := range strings.Split(b.text, "\n") {
		if b.lang == "console" {
			c, ok := strings.CutPrefix(l, "$ ")
			if !ok {
				continue
			}
			l = c
		}
		l = strings.NewReplacer(
			"localhost:8080", httpAddr, "127.0.0.1:8080", httpAddr,
			"localhost:9090", metricsAddr, "127.0.0.1:9090", metricsAddr,
		).Replace(l)
		lines = append(lines, l)
		if ownServerRe.MatchString(l) {
			own = true
			lines = append(lines, "__grey_ready")
		}
	}
	return strings.Join(lines, "\n") + "\n", own
}

// docsPrelude defines the wrappers every block runs with.
const docsPrelude = `set -eo pipefail
# curl records each response's status for the test.
curl() {
  local h rc st
  h=$(mktemp)
  rc=0
  command curl -D "$h" "$@" || rc=$?
  st=$(grep -o '^HTTP/[0-9.]* [0-9]*' "$h" | tail -1 | awk '{print $2}')
  rm -f "$h"
  [ -n "$st" ] && echo "$st $*" >> "$DOCS_STATUS"
  return $rc
}
# go builds from the repository; -o paths stay relative to this directory.
go() {
  local a=() o=0 x
  for x in "$@"; do
    if [ $o = 1 ]; then case $x in /*) ;; *) x="$PWD/$x" ;; esac; o=0; fi
    [ "$x" = -o ] && o=1
    a+=("$x")
  done
  command go -C "$GREY_REPO" "${a[@]}"
}
__grey_ready() {
  for _ in $(seq 600); do
    command curl -sf "http://$GREY_HTTP_ADDR/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "docs-test: greyd did not become ready on $GREY_HTTP_ADDR" >&2
  return 1
}
`

// TestDocBlocks checks the extraction the docs test relies on (it runs
// without GREY_E2E): blocks found with their directives, console prompts
// stripped, the text's addresses replaced, a greyd started in a block
// followed by the readiness wait.
func TestDocBlocks(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, root)
	byPlace := map[string]docBlock{}
	for _, b := range blocks {
		byPlace[b.file] = b // the last block of each file
		if b.skip != "" && strings.Contains(b.text, "greyd") && !strings.Contains(b.skip, " ") {
			t.Errorf("%s:%d: skip reason %q says too little", b.file, b.line, b.skip)
		}
	}
	if len(blocks) < 20 {
		t.Fatalf("found %d shell examples, want the 20 and more of README.md and docs/", len(blocks))
	}
	var proofs, readme *docBlock
	for i, b := range blocks {
		switch {
		case b.file == filepath.Join("docs", "PROOFS.md") && b.lang == "console":
			proofs = &blocks[i]
		case b.file == "README.md" && strings.Contains(b.text, "curl") && readme == nil:
			readme = &blocks[i]
		}
	}
	if proofs == nil || readme == nil {
		t.Fatal("the README's curl example or the PROOFS.md console example is missing")
	}
	src, own := proofs.script("127.0.0.1:1", "127.0.0.1:2")
	if !own || !strings.Contains(src, "go run ./cmd/greyd &") || !strings.Contains(src, "\n__grey_ready\n") || strings.Contains(src, "$ ") || strings.Contains(src, "ok  envelope") {
		t.Errorf("PROOFS.md console script: own server %v\n%s", own, src)
	}
	src, own = readme.script("127.0.0.1:1", "127.0.0.1:2")
	if own || !strings.Contains(src, "127.0.0.1:1/api/v1/tasks") || strings.Contains(src, "localhost:8080") {
		t.Errorf("README curl script: own server %v\n%s", own, src)
	}
}

// TestDocsExamples runs the shell examples of README.md and docs/.
func TestDocsExamples(t *testing.T) {
	requireE2E(t)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, root)
	if len(blocks) < 10 {
		t.Fatalf("found %d shell examples; the extraction is broken", len(blocks))
	}
	binDir := t.TempDir()
	for _, b := range []string{greydBin, greyctlBin} {
		if err := os.Symlink(b, filepath.Join(binDir, filepath.Base(b))); err != nil {
			t.Fatal(err)
		}
	}
	skipped := 0
	byFile := map[string][]docBlock{}
	var files []string
	for _, b := range blocks {
		if _, ok := byFile[b.file]; !ok {
			files = append(files, b.file)
		}
		byFile[b.file] = append(byFile[b.file], b)
		if b.skip != "" {
			skipped++
		}
	}
	t.Logf("%d shell examples, %d marked skip", len(blocks), skipped)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			var shared *greyd // the file's greyd, for the blocks that start none
			for _, b := range byFile[f] {
				if _, own := b.script("", ""); b.skip == "" && !own {
					shared = newGreyd(t, "")
					shared.Start()
					shared.WaitReady(30 * time.Second)
					break
				}
			}
			for _, b := range byFile[f] {
				t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) {
					if b.skip != "" {
						t.Skipf("%s:%d: marked skip: %s", b.file, b.line, b.skip)
					}
					ports := freePorts(t, 3)
					addrs := [3]string{}
					for i, p := range ports {
						addrs[i] = fmt.Sprintf("127.0.0.1:%d", p)
					}
					dataDir := filepath.Join(t.TempDir(), "data")
					src, own := b.script(addrs[0], addrs[2])
					if !own {
						addrs = [3]string{shared.HTTPAddr, shared.RaftAddr, shared.MetricsAddr}
						dataDir = shared.DataDir
						src, _ = b.script(addrs[0], addrs[2])
					}
					runDocBlock(t, b, root, binDir, addrs, dataDir, docsPrelude+src)
				})
			}
		})
	}
}

// runDocBlock runs one block's script and checks how it ended.
func runDocBlock(t *testing.T, b docBlock, root, binDir string, addrs [3]string, dataDir, src string) {
	t.Helper()
	dir := t.TempDir()
	if !strings.Contains(src, "-o bin/") {
		if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"greyd", "greyctl"} {
			if err := os.Symlink(filepath.Join(binDir, n), filepath.Join(dir, "bin", n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	statusFile := filepath.Join(dir, ".docs-status")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", src)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), goEnv(t)...)
	cmd.Env = append(cmd.Env,
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+dir,
		"GREY_REPO="+root,
		"GREY_SERVER=http://"+addrs[0],
		"GREY_HTTP_ADDR="+addrs[0],
		"GREY_RAFT_ADDR="+addrs[1],
		"GREY_METRICS_ADDR="+addrs[2],
		"GREY_DATA_DIR="+dataDir,
		"DOCS_STATUS="+statusFile,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output goes to a file, not a pipe: a greyd the block started in the
	// background keeps its output open after bash exits.
	outFile, err := os.Create(filepath.Join(dir, ".docs-output"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	err = cmd.Run()
	if cmd.Process != nil {
		// Whatever the block left running (a greyd it started).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	outBytes, _ := os.ReadFile(outFile.Name())
	out := bytes.NewBuffer(outBytes)
	where := fmt.Sprintf("%s:%d", b.file, b.line)
	if ctx.Err() != nil {
		t.Fatalf("%s: did not finish in time; output:\n%s", where, tail(out.Bytes(), 4000))
	}
	switch {
	case b.fails && err == nil:
		t.Fatalf("%s is marked fails but succeeded; output:\n%s", where, tail(out.Bytes(), 4000))
	case !b.fails && err != nil:
		t.Fatalf("%s failed (%v); output:\n%s", where, err, tail(out.Bytes(), 4000))
	}
	st, _ := os.ReadFile(statusFile)
	for _, l := range strings.Split(strings.TrimSpace(string(st)), "\n") {
		code, args, _ := strings.Cut(l, " ")
		n, _ := strconv.Atoi(code)
		if n >= 500 || n >= 400 && !slices.Contains(b.expect, n) {
			t.Errorf("%s: curl %s answered %d; output:\n%s", where, args, n, tail(out.Bytes(), 4000))
		}
	}
	t.Logf("%s ok; output:\n%s", where, tail(out.Bytes(), 1500))
}

// goEnv keeps the go command's caches where they are when a block runs
// with its own HOME.
func goEnv(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	v := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(v) != 3 {
		t.Fatalf("go env: %q", out)
	}
	return []string{"GOPATH=" + v[0], "GOMODCACHE=" + v[1], "GOCACHE=" + v[2]}
}

// TestProofVerifierInDocs runs the Python verifier of docs/PROOFS.md on a
// real task's proof (a payload with unsorted keys, white space, escapes and
// numbers JCS rewrites) and checks that it refuses a changed payload.
func TestProofVerifierInDocs(t *testing.T) {
	requireE2E(t)
	if err := exec.Command("python3", "-c", "import cryptography").Run(); err != nil {
		if testenv.InCI() {
			t.Fatalf("python3 with the cryptography package is required in CI: %v", err)
		}
		t.Skipf("python3 with the cryptography package is not available: %v", err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, "docs", "PROOFS.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```python\n(# verify\\.py.*?)```").FindSubmatch(md)
	if m == nil {
		t.Fatal("docs/PROOFS.md has no ```python block starting with # verify.py")
	}
	script := filepath.Join(t.TempDir(), "verify.py")
	if err := os.WriteFile(script, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	g := newGreyd(t, "")
	g.Start()
	g.WaitReady(30 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := client.New(g.URL(), client.WithTenant("acme"))
	if err != nil {
		t.Fatal(err)
	}
	payload := `{ "z": [1.0, 1e2, -0.5, 12345678, 1e-7, 1E21], "a": "caf\u00e9 \"q\" \n <&>", "é": {"b": null, "a": true}, "😀": "", "\u0080": 0 }`
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(payload)})
	if err != nil {
		t.Fatal(err)
	}
	if done, err := c.Wait(ctx, tk.ID); err != nil || done.Status != task.Completed || done.ProofID == "" {
		t.Fatalf("wait: %+v, %v; want completed with a proof", done, err)
	}
	run := func(server string) (string, error) {
		out, err := exec.CommandContext(ctx, "python3", script, server, "acme", tk.ID).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(g.URL()); err != nil || out != "ok" {
		t.Fatalf("verify.py on a real proof: %v: %s", err, out)
	}
	// The same task served with one payload value changed: refused.
	target, _ := url.Parse(g.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.URL.Path != "/api/v1/tasks/"+tk.ID {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		b = bytes.Replace(b, []byte(`12345678`), []byte(`12345679`), 1)
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	forged := httptest.NewServer(proxy)
	defer forged.Close()
	if out, err := run(forged.URL); err == nil || !strings.Contains(out, "input digest differs") {
		t.Fatalf("verify.py on a changed payload: %v: %s; want input digest differs", err, out)
	}
}
