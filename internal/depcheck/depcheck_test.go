package depcheck

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/grey-distributed/grey"

// forbidden are import path prefixes of SDKs that only driver subpackages
// may import (DESIGN §4: "the core never imports a driver").
var forbidden = []string{
	"github.com/aws/",                          // aws-sdk-go-v2
	"cloud.google.com/go",                      // Google Cloud SDK
	"google.golang.org/api/",                   // Google API clients
	"github.com/Azure/",                        // Azure SDK
	"github.com/jackc/pgx",                     // PostgreSQL
	"github.com/pressly/goose",                 // PostgreSQL migrations
	"github.com/apache/cassandra-gocql-driver", // Cassandra
	"github.com/gocql/gocql",
	"go.mongodb.org/mongo-driver", // MongoDB
	"github.com/twmb/franz-go",    // Kafka
	"github.com/rabbitmq/amqp091-go",
	"gocloud.dev/", // the blob port is blobstore; gocloud lives in its drivers
}

// notCore are the packages allowed to import SDKs: the binary that links
// the drivers, the driver subpackages themselves, and tests' helpers. A
// new driver is added here by name, so that linking an SDK is a decision a
// reviewer sees.
var notCore = []string{
	"cmd/greyd",
	"cmd/greyctl",                 // migrates and rebalances archives offline
	"cmd/internal/archivedrivers", // the archive drivers both binaries link
	"blobstore/fileblob",
	"blobstore/memblob",
	"blobstore/s3blob",
	"blobstore/gcsblob",
	"blobstore/azblob",
	"blobstore/gocloudblob",
	"archive/pgarchive/...", // the PostgreSQL driver and its test harness (pgtest)
	"archive/cassarchive",   // the Cassandra driver
	"archive/mongoarchive",  // the MongoDB driver
	"events/kafkaevents",
	"events/rabbitevents",
	"test/...",
	"e2e/...",
	"bench/...",
	"examples/...",
	"internal/testsvc/...",
	"internal/blobtest", // test helper: creates buckets on the emulators
}

func isCore(pkg string) bool {
	rel, ok := strings.CutPrefix(pkg, module+"/")
	if !ok {
		return pkg == module
	}
	for _, n := range notCore {
		if base, tree := strings.CutSuffix(n, "/..."); tree {
			if rel == base || strings.HasPrefix(rel, base+"/") {
				return false
			}
		} else if rel == n {
			return false
		}
	}
	return true
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestCoreImportsNoSDK runs go list -deps over the module's packages and
// fails for every core package that reaches a forbidden SDK, naming the
// path through which it does.
func TestCoreImportsNoSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the whole module")
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "-deps", "./...")
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	checked := 0
	for pkg := range imports {
		if !strings.HasPrefix(pkg, module) || !isCore(pkg) {
			continue
		}
		checked++
		if path := sdkPath(pkg, imports); path != nil {
			t.Errorf("core package %s imports an SDK: %s", pkg, strings.Join(path, " -> "))
		}
	}
	if checked < 20 {
		t.Fatalf("only %d core packages checked; is the module layout what this test expects?", checked)
	}
}

// sdkPath returns an import path from pkg to a forbidden package (one
// under a forbidden prefix), or nil.
func sdkPath(pkg string, imports map[string][]string) []string {
	return pathWhere(pkg, imports, func(p string) bool {
		return slices.ContainsFunc(forbidden, func(f string) bool { return strings.HasPrefix(p, f) })
	})
}

func TestIsCore(t *testing.T) {
	for pkg, want := range map[string]bool{
		module + "/server":                  true,
		module + "/blobstore":               true,
		module + "/blobstore/blobstoretest": true,
		module + "/blobstore/s3blob":        false,
		module + "/cmd/greyd":               false,
		module + "/cmd/greyctl":             false,
		module + "/test/smoke":              false,
		module + "/e2e":                     false,
	} {
		if got := isCore(pkg); got != want {
			t.Errorf("isCore(%s) = %v, want %v", pkg, got, want)
		}
	}
}

// executorsMayNotReach are the packages the executors must not depend on:
// greyd translates its configuration into their plain options and hands
// them a module source, so the same executors serve a server and a
// worker-only node and can be embedded without either.
var executorsMayNotReach = []string{module + "/config", module + "/client"}

// TestExecutorsImportNeitherConfigNorClient fails for every package under
// executor/ that reaches config or client, directly or not, naming the
// path through which it does.
func TestExecutorsImportNeitherConfigNorClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "-deps", "./executor/...")
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	checked := 0
	for pkg := range imports {
		if pkg != module+"/executor" && !strings.HasPrefix(pkg, module+"/executor/") {
			continue
		}
		checked++
		if path := pathTo(pkg, imports, executorsMayNotReach); path != nil {
			t.Errorf("executor package %s depends on %s: %s", pkg, path[len(path)-1], strings.Join(path, " -> "))
		}
	}
	if checked < 3 {
		t.Fatalf("only %d executor packages checked; is the module layout what this test expects?", checked)
	}
}

// pathTo returns an import path from pkg to one of targets, or nil.
func pathTo(pkg string, imports map[string][]string, targets []string) []string {
	return pathWhere(pkg, imports, func(p string) bool { return slices.Contains(targets, p) })
}

// pathWhere returns an import path (depth first) from pkg to a package
// that match reports, or nil when none is reachable.
func pathWhere(pkg string, imports map[string][]string, match func(string) bool) []string {
	seen := map[string]bool{}
	var walk func(p string) []string
	walk = func(p string) []string {
		if seen[p] {
			return nil
		}
		seen[p] = true
		if match(p) {
			return []string{p}
		}
		for _, q := range imports[p] {
			if rest := walk(q); rest != nil {
				return append([]string{p}, rest...)
			}
		}
		return nil
	}
	return walk(pkg)
}

func TestPathTo(t *testing.T) {
	imports := map[string][]string{"a": {"b", "c"}, "b": {"c"}, "c": {"d"}}
	if got := pathTo("a", imports, []string{"d"}); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("pathTo(a, d) = %v", got)
	}
	if got := pathTo("b", imports, []string{"a"}); got != nil {
		t.Errorf("pathTo(b, a) = %v", got)
	}
}
