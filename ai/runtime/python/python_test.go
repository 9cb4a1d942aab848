package python_test

import (
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/grey-distributed/grey/ai/runtime/python"
	"github.com/grey-distributed/grey/internal/testenv"
)

// TestUnittest runs the runtime's own Python unit tests (tests/, stdlib
// and numpy only) with each test interpreter.
func TestUnittest(t *testing.T) {
	for _, service := range []string{"pytorch", "tensorflow"} {
		t.Run(service, func(t *testing.T) {
			u, err := url.Parse(testenv.ServiceURL(t, service))
			if err != nil || u.Path == "" {
				t.Fatalf("%s is not a file:///path/to/python URL", testenv.EnvVar(service))
			}
			cmd := exec.Command(u.Path, "-m", "unittest", "discover", "-s", "tests")
			cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// TestSourcesEmbedded checks that every module of the package is in the
// embedded tree the driver writes out, and nothing else is.
func TestSourcesEmbedded(t *testing.T) {
	var got []string
	if err := fs.WalkDir(python.Sources(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	onDisk, err := fs.Glob(os.DirFS("."), python.PackageName+"/*.py")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(onDisk)
	if !slices.Equal(got, onDisk) || !slices.Contains(got, python.PackageName+"/__main__.py") {
		t.Fatalf("embedded %v, on disk %v", got, onDisk)
	}
}
