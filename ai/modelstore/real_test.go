package modelstore_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

// python returns the interpreter of a framework service (its URL is
// file://<path of python>).
func python(t *testing.T, service string) string {
	t.Helper()
	u := testenv.ServiceURL(t, service)
	return strings.TrimPrefix(u, "file://")
}

func runPython(t *testing.T, py, script string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), py, append([]string{"-c", script}, args...)...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=3", "CUDA_VISIBLE_DEVICES=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", py, err, out)
	}
}

// TestRealModels pushes a TorchScript MLP exported by real torch and a
// SavedModel exported by real TensorFlow, and checks the structural check
// tells them apart.
func TestRealModels(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{})
	ctx := t.Context()
	dir := t.TempDir()
	t.Run("pytorch", func(t *testing.T) {
		py := python(t, "pytorch")
		pt := filepath.Join(dir, "mlp.pt")
		weights := filepath.Join(dir, "weights.pt")
		runPython(t, py, `
import sys, torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
torch.jit.trace(m, torch.zeros(1, 4)).save(sys.argv[1])
torch.save(m.state_dict(), sys.argv[2])
`, pt, weights)
		b, err := os.ReadFile(pt)
		if err != nil {
			t.Fatal(err)
		}
		m := push(t, s, "acme", "mlp", "v1", ai.PyTorch, b)
		if m.Size != int64(len(b)) {
			t.Errorf("size %d", m.Size)
		}
		w, _ := os.ReadFile(weights)
		_, _, err = s.Push(ctx, "acme", modelstore.PushSpec{Name: "mlp", Version: "weights", Framework: ai.PyTorch}, bytes.NewReader(w))
		wantCode(t, "torch.save weights", err, greyerr.InvalidArgument, "not a TorchScript model")
		_, _, err = s.Push(ctx, "acme", modelstore.PushSpec{Name: "mlp", Version: "tf", Framework: ai.TensorFlow}, bytes.NewReader(b))
		wantCode(t, "TorchScript as tensorflow", err, greyerr.InvalidArgument, "not a TensorFlow SavedModel")
	})
	t.Run("tensorflow", func(t *testing.T) {
		py := python(t, "tensorflow")
		sm := filepath.Join(dir, "savedmodel")
		runPython(t, py, `
import sys, tensorflow as tf
class M(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.ones([4, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        return {"y": tf.matmul(x, self.w)}
m = M()
tf.saved_model.save(m, sys.argv[1], signatures=m.__call__)
`, sm)
		var tarred bytes.Buffer
		if err := modelstore.TarDir(sm, &tarred); err != nil {
			t.Fatal(err)
		}
		push(t, s, "acme", "linear", "1", ai.TensorFlow, tarred.Bytes())
		_, _, err := s.Push(ctx, "acme", modelstore.PushSpec{Name: "linear", Version: "pt", Framework: ai.PyTorch}, bytes.NewReader(tarred.Bytes()))
		wantCode(t, "SavedModel as pytorch", err, greyerr.InvalidArgument, "not a TorchScript model")
		// The tar unpacks to a directory TensorFlow loads.
		out := filepath.Join(t.TempDir(), "m")
		if err := modelstore.Unpack(bytes.NewReader(tarred.Bytes()), out, int64(tarred.Len())); err != nil {
			t.Fatal(err)
		}
		runPython(t, py, `
import sys, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
y = m.signatures["serving_default"](x=tf.ones([3, 4]))["y"].numpy()
assert y.shape == (3, 2) and (y == 4).all(), y
`, out)
	})
}
