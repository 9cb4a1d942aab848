package charttest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// The rolling-upgrade drill, without a cluster: the RENDERED server
// StatefulSet and worker Deployment (their command, args, env and mounted
// ConfigMap files) run as local greyd processes. Kubernetes' part is played
// by the test: it sets the downward-API env (pod name, pod index), expands
// $(VAR) in args as the kubelet does, puts the mounted files in a directory,
// and maps each pod's DNS name to 127.0.0.1 with its own ports (all pods
// share one host here). Three servers form the cluster (ordinal 0
// bootstraps, the others join), a worker joins, and while a client submits
// tasks the servers restart in the StatefulSet RollingUpdate order: the
// highest ordinal first, SIGTERM, wait for exit, start again, wait for
// /readyz (the readiness probe) before the next. No acknowledged task may be
// lost, and some server must answer every probe of the API.
//
// It builds greyd from the main module (go build); -short skips it.
func TestRollingUpgradeDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("the rolling-upgrade drill builds greyd and runs four processes; not in -short")
	}
	start := time.Now()
	const token = "drill-admin-token-0123456789abcdef"
	objs := render(t, renderCase{name: "drill", set: []string{"auth.adminTokenSecret=grey-admin", "workers.replicas=1"}})
	ss := find[*appsv1.StatefulSet](objs)[0]
	var workerDep *appsv1.Deployment
	for _, d := range find[*appsv1.Deployment](objs) {
		if d.Name == ss.Name[:len(ss.Name)-len("-server")]+"-worker" {
			workerDep = d
		}
	}
	if workerDep == nil {
		t.Fatal("no worker Deployment rendered")
	}
	var cm *corev1.ConfigMap
	for _, c := range find[*corev1.ConfigMap](objs) {
		if strings.HasSuffix(c.Name, "-config") {
			cm = c
		}
	}

	dir := t.TempDir()
	greyd := filepath.Join(dir, "greyd")
	build := exec.Command("go", "build", "-o", greyd, "./cmd/greyd")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build greyd: %v\n%s", err, out)
	}
	t.Logf("greyd built in %s", time.Since(start).Round(time.Millisecond))

	n := int(*ss.Spec.Replicas)
	spec := &ss.Spec.Template.Spec
	srv := container(t, spec)
	port := func(c *corev1.Container, name string) int {
		for _, p := range c.Ports {
			if p.Name == name {
				return int(p.ContainerPort)
			}
		}
		t.Fatalf("container has no port %s", name)
		return 0
	}
	httpPort, raftPort, metricsPort := port(srv, "http"), port(srv, "raft"), port(srv, "metrics")
	type pod struct {
		name                string
		http, raft, metrics string
		cmd                 *exec.Cmd
		done                chan struct{}
		log                 *bytes.Buffer
		argv                []string
		env                 []string
		mu                  sync.Mutex
	}
	pods := make([]*pod, n)
	// The pods' DNS names (from the rendered configs) become 127.0.0.1
	// with free ports.
	var repl []string
	for i := range n {
		p := &pod{name: fmt.Sprintf("%s-%d", ss.Name, i), http: freeAddr(t), raft: freeAddr(t), metrics: freeAddr(t)}
		pods[i] = p
		host := fmt.Sprintf("%s.%s.%s.svc.cluster.local", p.name, ss.Spec.ServiceName, "grey")
		repl = append(repl, fmt.Sprintf("%s:%d", host, httpPort), p.http, fmt.Sprintf("%s:%d", host, raftPort), p.raft)
	}
	hosts := strings.NewReplacer(repl...)
	// The mounted volumes: the ConfigMap and the Secret as files; paths
	// under a mount, in args and in the mounted grey.yaml files, point into
	// dir.
	mounts := map[string]string{}
	for _, c := range []*corev1.Container{srv, container(t, &workerDep.Spec.Template.Spec)} {
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = filepath.Join(dir, "vol-"+m.Name)
		}
	}
	var pathRepl []string
	for mp, d := range mounts {
		if mp != "/var/lib/grey" {
			pathRepl = append(pathRepl, mp+"/", d+"/")
		}
	}
	paths := strings.NewReplacer(pathRepl...)
	for _, v := range append(slices.Clone(spec.Volumes), workerDep.Spec.Template.Spec.Volumes...) {
		d := filepath.Join(dir, "vol-"+v.Name)
		switch {
		case v.ConfigMap != nil:
			mkdir(t, d)
			for k, text := range cm.Data {
				writeFile(t, filepath.Join(d, k), paths.Replace(hosts.Replace(text)), 0o644)
			}
		case v.Secret != nil:
			mkdir(t, d)
			for _, it := range v.Secret.Items {
				writeFile(t, filepath.Join(d, it.Path), token, 0o400)
			}
		}
	}
	// Paths inside the pod become paths in dir (a data dir per pod).
	localPath := func(podName, p string) string {
		for mp, d := range mounts {
			if rest, ok := strings.CutPrefix(p, mp); ok {
				if strings.HasSuffix(d, "vol-data") {
					d = filepath.Join(dir, "data-"+podName)
				}
				return d + rest
			}
		}
		return p
	}
	// Kubernetes' env and $(VAR) expansion.
	envOf := func(c *corev1.Container, podName string, index int, labels map[string]string) map[string]string {
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			case e.ValueFrom.FieldRef != nil:
				switch f := e.ValueFrom.FieldRef.FieldPath; f {
				case "metadata.name":
					env[e.Name] = podName
				case "metadata.labels['apps.kubernetes.io/pod-index']":
					env[e.Name] = strconv.Itoa(index)
				default:
					t.Fatalf("env %s: field %s is not simulated", e.Name, f)
				}
			case e.ValueFrom.SecretKeyRef != nil:
				env[e.Name] = token
			default:
				t.Fatalf("env %s: source %+v is not simulated", e.Name, e.ValueFrom)
			}
		}
		return env
	}
	varRef := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	argvOf := func(c *corev1.Container, podName string, env map[string]string, listen map[int]string) []string {
		argv := slices.Concat(c.Command, c.Args)
		for i, a := range argv {
			a = varRef.ReplaceAllStringFunc(a, func(m string) string {
				if v, ok := env[m[2:len(m)-1]]; ok {
					return v
				}
				return m
			})
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(v, "/") {
				a = k + "=" + localPath(podName, v)
			}
			for p, addr := range listen {
				a = strings.ReplaceAll(a, fmt.Sprintf("0.0.0.0:%d", p), addr)
			}
			argv[i] = a
		}
		argv[0] = greyd
		return argv
	}
	for i, p := range pods {
		env := envOf(srv, p.name, i, nil)
		p.argv = argvOf(srv, p.name, env, map[int]string{httpPort: p.http, raftPort: p.raft, metricsPort: p.metrics})
		for k, v := range env {
			p.env = append(p.env, k+"="+v)
		}
		mkdir(t, filepath.Join(dir, "data-"+p.name))
	}
	startPod := func(p *pod) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.log = &bytes.Buffer{}
		p.cmd = exec.Command(p.argv[0], p.argv[1:]...)
		p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, p.env...)
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", p.name, err)
		}
		p.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	}
	t.Cleanup(func() {
		for _, p := range pods {
			if p.cmd != nil && p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
			if t.Failed() {
				t.Logf("--- %s log (tail)\n%s", p.name, tail(p.log.String(), 3000))
			}
		}
	})
	// podManagementPolicy Parallel: every server at once.
	for _, p := range pods {
		startPod(p)
	}
	ready := func(p *pod) bool {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	waitReady := func(p *pod, within time.Duration) time.Duration {
		t0 := time.Now()
		for !ready(p) {
			select {
			case <-p.done:
				t.Fatalf("%s exited: %s", p.name, tail(p.log.String(), 2000))
			default:
			}
			if time.Since(t0) > within {
				t.Fatalf("%s not ready after %s", p.name, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(t0)
	}
	for _, p := range pods {
		waitReady(p, 2*time.Minute)
	}
	var urls []string
	for _, p := range pods {
		urls = append(urls, "http://"+p.http)
	}
	cl, err := client.New(strings.Join(urls, ","), client.WithToken(token), client.WithTenant("drill"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	info, err := cl.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	voters := 0
	for _, m := range info.Members {
		if m.Role == "server" {
			voters++
		}
	}
	if voters != n {
		t.Fatalf("cluster has %d servers, want %d: %+v", voters, n, info.Members)
	}
	t.Logf("%d servers formed a cluster in %s (leader %s)", n, time.Since(start).Round(time.Millisecond), info.LeaderID)

	// The worker pod: the Deployment's command and env; its metrics port
	// moves off the servers' (GREY_METRICS_ADDR, greyd's env override).
	wc := container(t, &workerDep.Spec.Template.Spec)
	wp := &pod{name: workerDep.Name + "-7d9f8-x2x4q"}
	wenv := envOf(wc, wp.name, 0, nil)
	wp.argv = argvOf(wc, wp.name, wenv, nil)
	wenv["GREY_METRICS_ADDR"] = freeAddr(t)
	for k, v := range wenv {
		wp.env = append(wp.env, k+"="+v)
	}
	mkdir(t, filepath.Join(dir, "data-"+wp.name))
	startPod(wp)
	pods = append(pods, wp)

	// Load: one submitter (each task once, with an idempotency key, retried
	// until acknowledged), one prober of the API.
	var (
		mu       sync.Mutex
		acked    []task.ID
		lastOK   = time.Now()
		gaps     []time.Duration // longest gap between acknowledged submits, per restart window
		curGap   time.Duration
		probeErr int
		probes   int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			spec := task.Spec{Kind: "noop", IdempotencyKey: fmt.Sprintf("drill-%d", k)}
			for {
				sctx, c := context.WithTimeout(ctx, 5*time.Second)
				tk, err := cl.Submit(sctx, spec)
				c()
				if err == nil {
					now := time.Now()
					mu.Lock()
					acked = append(acked, tk.ID)
					curGap = max(curGap, now.Sub(lastOK))
					lastOK = now
					mu.Unlock()
					break
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			answered := false
			for _, u := range urls {
				resp, err := http.Get(u + "/healthz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						answered = true
						break
					}
				}
			}
			mu.Lock()
			probes++
			if !answered {
				probeErr++
			}
			mu.Unlock()
		}
	}()
	// The worker has joined and runs tasks before the drill starts.
	first, err := cl.Submit(ctx, task.Spec{Kind: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	if tk, err := cl.Wait(wctx, first.ID); err != nil || tk.Status != task.Completed {
		wcancel()
		t.Fatalf("the worker ran no task: %v %+v (worker log: %s)", err, tk, tail(wp.log.String(), 2000))
	}
	wcancel()
	time.Sleep(2 * time.Second)
	drill := time.Now()
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	// The StatefulSet RollingUpdate order: highest ordinal first.
	for i := n - 1; i >= 0; i-- {
		p := pods[i]
		mu.Lock()
		curGap = time.Since(lastOK)
		mu.Unlock()
		t0 := time.Now()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			t.Fatalf("%s did not stop within terminationGracePeriodSeconds %s", p.name, grace)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited %d on SIGTERM", p.name, code)
		}
		stopped := time.Since(t0)
		startPod(p)
		readyIn := waitReady(p, 2*time.Minute)
		// Writes after the restart, as the controller moves on.
		time.Sleep(1500 * time.Millisecond)
		mu.Lock()
		gap := max(curGap, time.Since(lastOK))
		gaps = append(gaps, gap)
		mu.Unlock()
		t.Logf("restart %s: stopped in %s, ready %s after start, longest write unavailability %s", p.name,
			stopped.Round(time.Millisecond), readyIn.Round(time.Millisecond), gap.Round(time.Millisecond))
	}
	drillTime := time.Since(drill)
	close(stop)
	wg.Wait()

	// Every acknowledged task is there and runs to completion.
	mu.Lock()
	ids := slices.Clone(acked)
	mu.Unlock()
	if len(ids) < 50 {
		t.Fatalf("only %d tasks acknowledged during the drill", len(ids))
	}
	for _, id := range ids {
		for {
			tk, err := cl.Get(ctx, id)
			if err != nil {
				if greyerr.CodeOf(err) == greyerr.Unavailable && ctx.Err() == nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				t.Fatalf("acknowledged task %s: %v", id, err)
			}
			if tk.Status == task.Completed {
				break
			}
			if tk.Status.Terminal() {
				t.Fatalf("acknowledged task %s ended %s", id, tk.Status)
			}
			if ctx.Err() != nil {
				t.Fatalf("acknowledged task %s still %s", id, tk.Status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if probeErr > 0 {
		t.Errorf("no server answered %d of %d API probes", probeErr, probes)
	}
	longest := slices.Max(gaps)
	t.Logf("DRILL: %d servers restarted in order %s; %d tasks acknowledged, none lost, all completed; API probes %d, unanswered %d; "+
		"longest write unavailability per restart %v (max %s); drill %s; whole test %s",
		n, "highest ordinal first", len(ids), probes, probeErr, roundAll(gaps), longest.Round(time.Millisecond),
		drillTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func roundAll(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(time.Millisecond).String())
	}
	return out
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

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
