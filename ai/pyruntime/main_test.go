package pyruntime_test

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
)

// fixtureDir holds the models built once for the whole package: building
// one costs a second (torch) to five (tensorflow).
var (
	fixtureDir string
	fixMu      sync.Mutex
	fixtures   = map[string]pyruntimetest.Fixture{}
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "pyruntime-test-")
	if err != nil {
		panic(err)
	}
	fixtureDir = d
	code := m.Run()
	if tf.d != nil {
		_ = tf.d.Close()
	}
	_ = os.RemoveAll(d)
	os.Exit(code)
}

// fixture builds (once) a model of kind for a batch of rows.
func fixture(t testing.TB, python, kind string, rows int) pyruntimetest.Fixture {
	t.Helper()
	fixMu.Lock()
	defer fixMu.Unlock()
	k := python + "|" + kind + "|" + strconv.Itoa(rows)
	if f, ok := fixtures[k]; ok {
		return f
	}
	f := pyruntimetest.BuildIn(t, fixtureDir, python, kind, rows)
	fixtures[k] = f
	return f
}

// open opens a python:// driver for python with the query, closed at the
// test's end.
func open(t testing.TB, python, query string, opts ai.OpenOptions) *pyruntime.Driver {
	t.Helper()
	u, err := url.Parse("python://" + python + query)
	if err != nil {
		t.Fatal(err)
	}
	d, err := pyruntime.Open(u, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func load(t testing.TB, d ai.Driver, f pyruntimetest.Fixture) string {
	t.Helper()
	spec := f.Spec("")
	if _, err := d.Load(context.Background(), spec); err != nil {
		t.Fatalf("load %s: %v", f.Kind, err)
	}
	return spec.Key
}

// tf is one tensorflow runtime shared by the SavedModel tests: importing
// tensorflow costs seconds and about 1 GiB per process.
var tf struct {
	sync.Mutex
	d *pyruntime.Driver
}

// sharedTF returns the shared tensorflow driver (opened on first use,
// closed by TestMain) and its interpreter.
func sharedTF(t testing.TB) (*pyruntime.Driver, string) {
	t.Helper()
	py := pyruntimetest.TensorFlowPython(t)
	tf.Lock()
	defer tf.Unlock()
	if tf.d == nil {
		u, err := url.Parse("python://" + py)
		if err != nil {
			t.Fatal(err)
		}
		if tf.d, err = pyruntime.Open(u, ai.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return tf.d, py
}
