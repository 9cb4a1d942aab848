package telemetry

import (
	"encoding/json"
	"fmt"
	"github.com/grey-distributed/grey/relay"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/events"
)

// tool finds an external binary on PATH or in /usr/bin. Without it the
// test is skipped, except in CI (CI=true), where it fails.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/bin", name); isExecutable(p) {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install prometheus); CI=true requires it", name)
	}
	t.Skipf("%s is not installed (apt-get install prometheus); skipping outside CI", name)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func runTool(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	out := runTool(t, "alerts", promtool, "check", "rules", "grey-rules.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	out = runTool(t, "alerts", promtool, "test", "rules", "grey-rules.test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// The alerts the issue asks for are all there.
func TestAlertNames(t *testing.T) {
	data, err := os.ReadFile("alerts/grey-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"GreyNoLeader", "GreyFrequentLeaderChanges", "GreyHighTaskFailureRate",
		"GreyGrowingBacklog", "GreyQuotaExhausted", "GreyProofFailures", "GreyScrapeDown", "GreyArchiveLagging", "GreyEventConsumerLagging"} {
		if !strings.Contains(string(data), "alert: "+a+"\n") {
			t.Errorf("grey-rules.yml lacks alert %s", a)
		}
	}
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// dashExpr is one panel query with Grafana's variables substituted.
type dashExpr struct {
	Where string // file: panel title/refId
	Expr  string
}

// templateValues stand in for Grafana's variables when a query is run
// outside Grafana.
var templateValues = map[string]string{
	"$__rate_interval": "1m",
	"$__interval":      "15s",
	"$__range":         "5m",
	"$job":             "grey",
	"$tenant":          ".*",
}

func substitute(expr string) string {
	keys := make([]string, 0, len(templateValues))
	for k := range templateValues {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		expr = strings.ReplaceAll(expr, k, templateValues[k])
		expr = strings.ReplaceAll(expr, "${"+k[1:]+"}", templateValues[k])
	}
	return expr
}

var dashboardFiles = []string{"cluster-overview.json", "task-execution.json", "tenant-isolation.json", "proofs-tee.json"}

func loadDashboards(t *testing.T) map[string]*dashboard {
	t.Helper()
	out := map[string]*dashboard{}
	for _, f := range dashboardFiles {
		data, err := os.ReadFile(filepath.Join("dashboards", f))
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = &d
	}
	return out
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func dashboardExprs(t *testing.T) []dashExpr {
	t.Helper()
	var out []dashExpr
	ds := loadDashboards(t)
	for _, f := range dashboardFiles {
		for _, p := range allPanels(ds[f].Panels) {
			for _, tg := range p.Targets {
				out = append(out, dashExpr{Where: fmt.Sprintf("%s: %q/%s", f, p.Title, tg.RefID), Expr: substitute(tg.Expr)})
			}
		}
	}
	return out
}

// TestDashboards checks what Grafana provisioning needs: a datasource
// variable DS_PROMETHEUS used by every panel and query, unique uids and
// panel ids, panels within the 24-column grid, and queries that only name
// families this package exports (or Go/process collector families).
func TestDashboards(t *testing.T) {
	ds := loadDashboards(t)
	uids := map[string]bool{}
	for _, f := range dashboardFiles {
		d := ds[f]
		if d.UID == "" || uids[d.UID] || !strings.HasPrefix(d.Title, "Grey / ") {
			t.Errorf("%s: uid %q / title %q: want a unique uid and a \"Grey / \" title", f, d.UID, d.Title)
		}
		uids[d.UID] = true
		hasDS := false
		for _, v := range d.Templating.List {
			if v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
				hasDS = true
			}
			if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${DS_PROMETHEUS}") {
				t.Errorf("%s: variable %s does not use ${DS_PROMETHEUS}", f, v.Name)
			}
		}
		if !hasDS {
			t.Errorf("%s: no datasource variable DS_PROMETHEUS of type prometheus in templating", f)
		}
		ids := map[int]bool{}
		queries := 0
		for _, p := range allPanels(d.Panels) {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q has id %d (duplicate or zero)", f, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
				t.Errorf("%s: panel %q gridPos %+v outside the grid", f, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("%s: panel %q does not use ${DS_PROMETHEUS}", f, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				if tg.Datasource != nil && tg.Datasource.UID != "${DS_PROMETHEUS}" {
					t.Errorf("%s: panel %q query %s names datasource %q", f, p.Title, tg.RefID, tg.Datasource.UID)
				}
				checkFamilies(t, f+": "+p.Title, tg.Expr)
			}
		}
		if queries == 0 {
			t.Errorf("%s has no queries", f)
		}
	}
}

var familyRef = regexp.MustCompile(`\b(grey_[a-z_]+|process_[a-z_]+|go_[a-z_]+)\b`)

// relaySinks are the relay's sinks whose families dashboards and rules
// may name: grey_<sink>_lag_tasks and the rest (relay/metrics.go).
var relaySinks = []string{"archive", "events_kafka", "events_rabbitmq"}

// knownFamilies are the families a greyd exports: this package's, the
// event streams' and the relay's per sink.
func knownFamilies() map[string]bool {
	known := map[string]bool{}
	for _, f := range append(Families(), events.Families()...) {
		known[f] = true
	}
	for _, s := range relaySinks {
		for _, f := range relay.Families(s) {
			known[f] = true
		}
	}
	return known
}

// checkFamilies fails for a grey_ name in expr that a greyd does not
// export.
func checkFamilies(t *testing.T, where, expr string) {
	t.Helper()
	known := knownFamilies()
	for _, name := range familyRef.FindAllString(expr, -1) {
		if !strings.HasPrefix(name, "grey_") {
			continue
		}
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b := strings.TrimSuffix(name, suf); b != name && known[b] {
				base = b
			}
		}
		if !known[base] {
			t.Errorf("%s: %s is not a family this package exports", where, name)
		}
	}
}

// TestRuleFamilies checks the rule file names only exported families.
func TestRuleFamilies(t *testing.T) {
	data, err := os.ReadFile("alerts/grey-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	checkFamilies(t, "grey-rules.yml", string(data))
}

// TestDashboardExprsParse has promtool parse every dashboard query, as
// recording rules of a throw-away rule file.
func TestDashboardExprsParse(t *testing.T) {
	promtool := tool(t, "promtool")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		q, _ := json.Marshal(e.Expr)
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboards.yml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, dir, promtool, "check", "rules", "dashboards.yml")
}

// TestMetricsDoc checks docs/metrics.md describes every family.
func TestMetricsDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Families() {
		if !strings.Contains(string(data), "`"+f+"`") {
			t.Errorf("docs/metrics.md does not describe %s", f)
		}
	}
}
