package imagetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grey-distributed/grey/internal/testenv"
)

const repoRoot = "../.."

func buildah(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "buildah", append([]string{"--storage-driver", "vfs"}, args...)...)
}

// scripts/image.sh builds the image offline and prints its digest; greyd
// runs in it (chroot isolation, host network) as user 65532, answers
// /readyz, and writes its data dir as that user.
func TestImageBuildsAndRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds greyd, greyctl and an image; not in -short")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		if testenv.InCI() {
			t.Fatal("buildah is missing in CI (scripts/services.sh tools installs it)")
		}
		t.Skip("buildah is not installed (apt-get install -y buildah, or scripts/services.sh tools): the image is not built")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, cmd := range []string{"greyd", "greyctl"} {
		b := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, cmd), "./cmd/"+cmd)
		b.Dir = repoRoot
		b.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := b.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	tag := fmt.Sprintf("localhost/grey/greyd:test-%d", os.Getpid())
	img := exec.CommandContext(ctx, "scripts/image.sh", tag)
	img.Dir = repoRoot
	img.Env = append(os.Environ(), "GREY_IMAGE_BIN="+bin)
	out, err := img.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = buildah(context.Background(), "rmi", "-f", tag).Run() })
	if !strings.Contains(string(out), "digest: sha256:") {
		t.Fatalf("scripts/image.sh printed no digest:\n%s", out)
	}
	t.Logf("IMAGE: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))

	// The image's configuration: non-root user, greyd as entrypoint.
	cfg, err := buildah(ctx, "inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}}", tag).CombinedOutput()
	if err != nil {
		t.Fatalf("inspect: %v %s", err, cfg)
	}
	if got := strings.TrimSpace(string(cfg)); got != "65532:65532 [/greyd]" {
		t.Errorf("image user and entrypoint %q, want 65532:65532 [/greyd]", got)
	}

	ctrOut, err := buildah(ctx, "from", "--quiet", tag).Output()
	if err != nil {
		t.Fatalf("buildah from: %v", err)
	}
	ctr := strings.TrimSpace(string(ctrOut))
	t.Cleanup(func() { _ = buildah(context.Background(), "rm", ctr).Run() })
	vol := filepath.Join(dir, "vol")
	if err := os.Mkdir(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(vol, 0o777)
	addr := freeAddr(t)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	run := buildah(runCtx, "run", "--isolation", "chroot", "-v", vol+":/data", ctr, "--",
		"/greyd", "--data-dir", "/data/grey", "--http-addr", addr, "--raft-addr", freeAddr(t), "--metrics-addr", freeAddr(t))
	logf := filepath.Join(dir, "run.log")
	lf, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	run.Stdout, run.Stderr = lf, lf
	// buildah runs greyd under buildah-chroot-exec, which outlives a
	// killed buildah: the whole process group is stopped instead (SIGTERM
	// for a graceful stop, then SIGKILL for whatever is left).
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	run.Cancel = func() error { return syscall.Kill(-run.Process.Pid, syscall.SIGTERM) }
	run.WaitDelay = 15 * time.Second
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL) })
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			b, _ := os.ReadFile(logf)
			t.Fatalf("greyd in the image exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf)
			t.Fatalf("greyd in the image not ready in a minute\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fi, err := os.Stat(filepath.Join(vol, "grey", "node.key"))
	if err != nil {
		t.Fatalf("greyd wrote no node key: %v", err)
	}
	if uid := ownerUID(fi); uid != 65532 {
		t.Errorf("the data dir is written by uid %d, want 65532 (non-root)", uid)
	}
	stop()
	<-done
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
