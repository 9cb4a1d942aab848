// Package pyruntimetest builds small real models for Grey's inference
// tests: a TorchScript MLP, CNN and two-input model, models that raise,
// hang or print, and TensorFlow SavedModels, each exported by the real
// framework (no weights are downloaded) and run once directly in Python,
// loaded back from its file on one thread as the runtime loads it, to
// record the outputs a runtime must reproduce byte for byte on CPU.
//
// The interpreters come from the test services: GREY_TEST_PYTORCH_URL and
// GREY_TEST_TENSORFLOW_URL (file:///path/to/python); see internal/testenv.
package pyruntimetest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/internal/testenv"
)

//go:embed models.py
var modelsPy []byte

// The kinds of model Build makes.
const (
	// TorchMLP is Linear(8,16)-ReLU-Linear(16,4): input "x" FP32 [B,8],
	// output "output__0" FP32 [B,4].
	TorchMLP = "mlp"
	// TorchWide is Linear(8,256)-ReLU-Linear(256,256)-ReLU-Linear(256,4):
	// input "x" FP32 [B,8], output "output__0" FP32 [B,4]. With OpenBLAS
	// its rows' bits depend on how many rows a call has.
	TorchWide = "wide"
	// TorchCNN is Conv2d-ReLU-pool-Linear: input "x" FP32 [B,1,8,8],
	// outputs a dict: "logits" FP32 [B,3] and "label" INT64 [B].
	TorchCNN = "cnn"
	// TorchPair takes two FP64 [B,3] inputs "a" and "b" and returns the
	// tuple (a+b, a*b) as "output__0" and "output__1".
	TorchPair = "pair"
	// TorchRaises raises ValueError when its input sums above zero (the
	// inputs Build makes do).
	TorchRaises = "raises"
	// TorchHangs never returns.
	TorchHangs = "hangs"
	// TorchPrints prints to stdout and returns 2x.
	TorchPrints = "prints"
	// SavedModel has inputs "x" FP32 [B,4] and "bias" FP32 [B,3] and
	// outputs "y" = x·w + bias FP32 [B,3] and "top" = argmax(y) INT64 [B].
	SavedModel = "savedmodel"
	// SavedModelRaises fails an assertion for non-negative inputs (the
	// inputs Build makes are).
	SavedModelRaises = "savedmodel_raises"
)

// Python returns the interpreter of a test service ("pytorch" or
// "tensorflow"), skipping the test (failing it in CI) when the service is
// not configured.
func Python(t testing.TB, service string) string {
	t.Helper()
	raw := testenv.ServiceURL(t, service)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" || u.Path == "" {
		t.Fatalf("%s=%q is not a file:///path/to/python URL", testenv.EnvVar(service), raw)
	}
	return u.Path
}

// TorchPython is Python(t, "pytorch").
func TorchPython(t testing.TB) string { t.Helper(); return Python(t, "pytorch") }

// TensorFlowPython is Python(t, "tensorflow").
func TensorFlowPython(t testing.TB) string { t.Helper(); return Python(t, "tensorflow") }

// Fixture is a built model with inputs and the outputs the model gave for
// them when run directly in Python.
type Fixture struct {
	// Kind is what Build was asked for.
	Kind string
	// Model describes it (tenant "t1", name the kind, version "1"; digest
	// of the file, or of a deterministic tar of the SavedModel directory).
	Model ai.Model
	// FrameworkVersion is the version of the framework that built it.
	FrameworkVersion string
	// Path is the TorchScript file or SavedModel directory.
	Path string
	// Inputs of a batch of the rows Build was asked for.
	Inputs []ai.Tensor
	// Outputs the model gave for Inputs (none for models that raise or
	// hang), named as the runtime names them.
	Outputs []ai.Tensor
}

// Spec returns a load spec for f under key (the digest when key is "").
func (f Fixture) Spec(key string) ai.LoadSpec {
	if key == "" {
		key = f.Model.Digest
	}
	return ai.LoadSpec{Key: key, Model: f.Model, Path: f.Path, Device: "cpu"}
}

type manifest struct {
	Framework        ai.Framework `json:"framework"`
	FrameworkVersion string       `json:"framework_version"`
	Path             string       `json:"path"`
	Inputs           []tensorFile `json:"inputs"`
	Outputs          []tensorFile `json:"outputs"`
}

type tensorFile struct {
	Name     string      `json:"name"`
	Datatype ai.Datatype `json:"datatype"`
	Shape    []int64     `json:"shape"`
	File     string      `json:"file"`
}

// Build makes a model of kind with python (which must import the kind's
// framework) in the test's temporary directory, and its fixture for a
// batch of rows.
func Build(t testing.TB, python, kind string, rows int) Fixture {
	t.Helper()
	return BuildIn(t, t.TempDir(), python, kind, rows)
}

// BuildIn is Build into dir, for fixtures shared by several tests (dir
// outlives the test that built them).
func BuildIn(t testing.TB, dir, python, kind string, rows int) Fixture {
	t.Helper()
	dir, err := os.MkdirTemp(dir, kind+"-")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "models.py")
	if err := os.WriteFile(script, modelsPy, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(python, script, kind, out, strconv.Itoa(rows))
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "PYTHONDONTWRITEBYTECODE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the %s model with %s: %v\n%s", kind, python, err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f := Fixture{Kind: kind, FrameworkVersion: m.FrameworkVersion, Path: filepath.Join(out, m.Path)}
	f.Inputs = readTensors(t, out, m.Inputs)
	f.Outputs = readTensors(t, out, m.Outputs)
	digest, size := digestOf(t, f.Path)
	f.Model = ai.Model{TenantID: "t1", Name: strings.ReplaceAll(kind, "_", "-"), Version: "1", Framework: m.Framework,
		Digest: digest, Size: size, CreatedAt: time.Unix(0, 0).UTC()}
	return f
}

func readTensors(t testing.TB, dir string, fs []tensorFile) []ai.Tensor {
	t.Helper()
	out := make([]ai.Tensor, 0, len(fs))
	for _, tf := range fs {
		b, err := os.ReadFile(filepath.Join(dir, tf.File))
		if err != nil {
			t.Fatal(err)
		}
		ts := ai.Tensor{Name: tf.Name, Datatype: tf.Datatype, Shape: tf.Shape, Data: b}
		if err := ts.Validate(tf.File); err != nil {
			t.Fatal(err)
		}
		out = append(out, ts)
	}
	return out
}

// digestOf returns "sha256:<hex>" and the size of a file, or of a
// deterministic tar (sorted names, zero times) of a directory.
func digestOf(t testing.TB, path string) (string, int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if st.IsDir() {
		b, err = TarDir(path)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), int64(len(b))
}

// TarDir returns a deterministic tar of dir's regular files and
// directories (sorted names, zero times, no owners), as a SavedModel is
// pushed.
func TarDir(dir string) ([]byte, error) {
	var paths []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case st.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		case st.Mode().IsRegular():
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
		default:
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
