package charttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/grey-distributed/grey/config"
)

const chartDir = "../helm/grey"

// repoRoot is the main module's root (the nested deploy module is one
// level below it).
const repoRoot = "../.."

// A rendering case: values files of the chart directory, plus --set.
type renderCase struct {
	name  string
	files []string
	set   []string
}

// Every values file the chart ships renders, alone or on top of the cloud
// files it is written for.
var renderCases = []renderCase{
	{name: "defaults", set: []string{"auth.adminTokenSecret=grey-admin"}},
	{name: "defaults-all-monitoring", set: []string{"auth.adminTokenSecret=grey-admin", "monitoring.serviceMonitor.enabled=true",
		"monitoring.prometheusRule.enabled=true", "monitoring.dashboards.enabled=true", "ingress.enabled=true", "ingress.host=grey.local"}},
	{name: "single-server", set: []string{"auth.adminTokenSecret=grey-admin", "servers.replicas=1", "servers.role=both", "workers.enabled=false"}},
	{name: "eks", files: []string{"values-eks.yaml"}},
	{name: "gke", files: []string{"values-gke.yaml"}},
	{name: "aks", files: []string{"values-aks.yaml"}},
	{name: "aks-tee", files: []string{"values-aks.yaml", "values-tee.yaml"}},
	{name: "gke-tee", files: []string{"values-gke.yaml", "values-tee.yaml"}},
	{name: "eks-production", files: []string{"values-eks.yaml", "values-production.yaml"}},
	{name: "gke-production", files: []string{"values-gke.yaml", "values-production.yaml"}},
	{name: "aks-production-tee", files: []string{"values-aks.yaml", "values-production.yaml", "values-tee.yaml"}},
}

func render(t *testing.T, c renderCase) []Object {
	t.Helper()
	var files []string
	for _, f := range c.files {
		files = append(files, filepath.Join(chartDir, f))
	}
	objs, err := Render(context.Background(), Options{ChartDir: chartDir, ValueFiles: files, Set: c.set, Release: "grey", Namespace: "grey"})
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return objs
}

// Every values file of the chart directory is in renderCases.
func TestEveryValuesFileIsRendered(t *testing.T) {
	matches, err := filepath.Glob(filepath.Join(chartDir, "values-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, c := range renderCases {
		for _, f := range c.files {
			used[f] = true
		}
	}
	if len(matches) == 0 {
		t.Fatal("no values-*.yaml in the chart")
	}
	for _, m := range matches {
		if !used[filepath.Base(m)] {
			t.Errorf("%s is rendered by no case of renderCases", m)
		}
	}
}

func TestChartRendersAndHoldsInvariants(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			objs := render(t, c)
			checkInvariants(t, c, objs)
		})
	}
}

func find[T any](objs []Object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func checkInvariants(t *testing.T, c renderCase, objs []Object) {
	seen := map[string]bool{}
	for _, o := range objs {
		key := o.APIVersion + "/" + o.Kind + "/" + o.Name
		if seen[key] {
			t.Errorf("%s rendered twice", key)
		}
		seen[key] = true
	}
	sts := find[*appsv1.StatefulSet](objs)
	if len(sts) != 1 {
		t.Fatalf("%d StatefulSets, want 1", len(sts))
	}
	ss := sts[0]
	cms := find[*corev1.ConfigMap](objs)
	var cfgMap *corev1.ConfigMap
	for _, cm := range cms {
		if strings.HasSuffix(cm.Name, "-config") {
			cfgMap = cm
		}
	}
	if cfgMap == nil {
		t.Fatal("no config ConfigMap")
	}
	checkServers(t, ss, objs, cfgMap)
	deps := find[*appsv1.Deployment](objs)
	for _, d := range deps {
		checkPod(t, "Deployment "+d.Name, &d.Spec.Template.Spec)
		checkWorker(t, d, cfgMap, objs)
	}
	checkPod(t, "StatefulSet "+ss.Name, &ss.Spec.Template.Spec)
	checkMonitoring(t, objs)
	checkNetworkPolicies(t, ss, objs)
	checkCloud(t, objs, cfgMap)
	for _, so := range find[*ScaledObject](objs) {
		name := so.Spec.ScaleTargetRef.Name
		if !slices.ContainsFunc(deps, func(d *appsv1.Deployment) bool { return d.Name == name }) {
			t.Errorf("ScaledObject %s scales %q, which is no rendered Deployment", so.Metadata.Name, name)
		}
		for _, d := range deps {
			if d.Name == name && d.Spec.Replicas != nil {
				t.Errorf("Deployment %s sets replicas while KEDA scales it (each upgrade would reset the count)", d.Name)
			}
		}
		if q := so.Spec.Triggers[0].Metadata["query"]; !strings.Contains(q, "grey_queue_depth") {
			t.Errorf("ScaledObject query %q is not on grey_queue_depth", q)
		}
	}
}

// loadConfig loads one rendered grey.yaml through greyd's own loader and
// validation, as greyd does at start (with the Secret's env var).
func loadConfig(t *testing.T, name, text string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GREY_ADMIN_TOKEN": "0123456789abcdef0123456789abcdef"}
	cfg, err := config.LoadFiles([]string{p}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s: greyd refuses the rendered config: %v\n%s", name, err, text)
	}
	return cfg
}

func container(t *testing.T, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == "greyd" {
			return &spec.Containers[i]
		}
	}
	t.Fatal("no greyd container")
	return nil
}

func argValue(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func checkServers(t *testing.T, ss *appsv1.StatefulSet, objs []Object, cm *corev1.ConfigMap) {
	n := int(*ss.Spec.Replicas)
	if n%2 == 0 {
		t.Errorf("servers: %d replicas, an even number", n)
	}
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement && n > 1 {
		t.Errorf("podManagementPolicy %s with %d servers", ss.Spec.PodManagementPolicy, n)
	}
	if ss.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		t.Errorf("updateStrategy %s, want RollingUpdate (one pod at a time, highest ordinal first)", ss.Spec.UpdateStrategy.Type)
	}
	if ru := ss.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil && ru.MaxUnavailable.IntValue() > 1 {
		t.Errorf("rollingUpdate.maxUnavailable %v: more than one server down at once", ru.MaxUnavailable)
	}
	sel, err := metaSelector(ss.Spec.Selector.MatchLabels)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
		t.Error("StatefulSet selector does not select its pod template")
	}
	// The headless Service of serviceName: clusterIP None, published
	// before ready (joins and elections happen before /readyz is 200).
	var headless *corev1.Service
	for _, s := range find[*corev1.Service](objs) {
		if s.Name == ss.Spec.ServiceName {
			headless = s
		}
	}
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("serviceName %q: want a headless Service publishing not-ready addresses, got %+v", ss.Spec.ServiceName, headless)
	} else if !sel.Matches(labels.Set(headless.Spec.Selector)) && !labels.SelectorFromSet(headless.Spec.Selector).Matches(labels.Set(ss.Spec.Template.Labels)) {
		t.Error("the headless Service does not select the server pods")
	}
	c := container(t, &ss.Spec.Template.Spec)
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("server readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("server liveness probe %+v, want GET /healthz (not /readyz: a server without quorum must not be restarted)", c.LivenessProbe)
	}
	// The data dir is the persistent volume.
	dataDir := argValue(c.Args, "--data-dir")
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.MountPath == dataDir && m.Name == "data" {
			mounted = true
		}
	}
	if !mounted || len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Errorf("--data-dir %q is not the volumeClaimTemplate data", dataDir)
	}
	if argValue(c.Args, "--node-id") != "$(POD_NAME)" {
		t.Errorf("--node-id %q, want the pod name", argValue(c.Args, "--node-id"))
	}
	// The PDB keeps a majority.
	var pdb *policyv1.PodDisruptionBudget
	for _, p := range find[*policyv1.PodDisruptionBudget](objs) {
		if labels.SelectorFromSet(p.Spec.Selector.MatchLabels).Matches(labels.Set(ss.Spec.Template.Labels)) {
			pdb = p
		}
	}
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget selects the servers")
	}
	down := n
	if pdb.Spec.MaxUnavailable != nil {
		down = pdb.Spec.MaxUnavailable.IntValue()
	} else if pdb.Spec.MinAvailable != nil {
		down = n - pdb.Spec.MinAvailable.IntValue()
	}
	if n > 1 && n-down < n/2+1 {
		t.Errorf("PDB lets %d of %d servers go: below a majority", down, n)
	}
	// Each ordinal's grey.yaml: ordinal 0 bootstraps, the others join the
	// rest; advertised addresses are the pod's DNS name; greyd accepts it;
	// it drains within the grace period.
	grace := *ss.Spec.Template.Spec.TerminationGracePeriodSeconds
	for i := range n {
		key := fmt.Sprintf("server-%d.yaml", i)
		text, ok := cm.Data[key]
		if !ok {
			t.Fatalf("ConfigMap has no %s for ordinal %d", key, i)
		}
		cfg := loadConfig(t, key, text)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", key, err)
		}
		host := fmt.Sprintf("%s-%d.%s.", ss.Name, i, ss.Spec.ServiceName)
		if !strings.HasPrefix(cfg.Raft.Advertise, host) || !strings.Contains(cfg.HTTP.Advertise, "://"+host) {
			t.Errorf("%s advertises raft %q, api %q: want %s...", key, cfg.Raft.Advertise, cfg.HTTP.Advertise, host)
		}
		if (i == 0) != cfg.Raft.Bootstrap {
			t.Errorf("%s: bootstrap %v", key, cfg.Raft.Bootstrap)
		}
		if i > 0 && len(cfg.Raft.Join) != n-1 {
			t.Errorf("%s joins through %v, want the other %d servers", key, cfg.Raft.Join, n-1)
		}
		if s := int64(cfg.HTTP.ShutdownGrace.Std().Seconds()); s >= grace {
			t.Errorf("%s: http.shutdown_grace %ds is not within terminationGracePeriodSeconds %d", key, s, grace)
		}
		if cfg.Node.Role == config.RoleWorker {
			t.Errorf("%s: role worker on a server", key)
		}
		if !cfg.Auth.Mode.Enabled() {
			t.Errorf("%s: no authentication", key)
		}
		if cfg.Monitoring.Prometheus.Pprof {
			t.Errorf("%s: pprof served beyond loopback", key)
		}
	}
	if _, ok := cm.Data[fmt.Sprintf("server-%d.yaml", n)]; ok {
		t.Errorf("a config for ordinal %d of %d servers", n, n)
	}
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	return labels.SelectorFromSet(m), nil
}

// checkPod: non-root, read-only root filesystem, no privilege escalation,
// all capabilities dropped, requests and a memory limit, no service
// account token.
func checkPod(t *testing.T, what string, spec *corev1.PodSpec) {
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", what, psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a Kubernetes API token it does not use", what)
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no securityContext", what, c.Name)
			continue
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: root filesystem writable", what, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: privilege escalation allowed", what, c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s/%s: privileged", what, c.Name)
		case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
			t.Errorf("%s/%s: capabilities not dropped", what, c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: resources %+v: want cpu and memory requests and a memory limit", what, c.Name, c.Resources)
		}
		if c.Image == "" || (!strings.Contains(c.Image, ":") && !strings.Contains(c.Image, "@")) {
			t.Errorf("%s/%s: image %q without tag or digest", what, c.Name, c.Image)
		}
		// Every writable path is a volume.
		var tmp bool
		for _, m := range c.VolumeMounts {
			tmp = tmp || m.MountPath == "/tmp"
		}
		if !tmp {
			t.Errorf("%s/%s: no writable /tmp on a read-only root", what, c.Name)
		}
	}
}

func checkWorker(t *testing.T, d *appsv1.Deployment, cm *corev1.ConfigMap, objs []Object) {
	c := container(t, &d.Spec.Template.Spec)
	file := filepath.Base(argValue(c.Args, "--config"))
	text, ok := cm.Data[file]
	if !ok {
		t.Fatalf("Deployment %s reads %s, which the ConfigMap lacks", d.Name, file)
	}
	cfg := loadConfig(t, file, text)
	if err := cfg.Validate(); err != nil {
		t.Errorf("%s: %v", file, err)
	}
	if cfg.Node.Role != config.RoleWorker {
		t.Errorf("%s: role %q", file, cfg.Node.Role)
	}
	ss := find[*appsv1.StatefulSet](objs)[0]
	if len(cfg.Node.Servers) != int(*ss.Spec.Replicas) {
		t.Errorf("%s leases from %v: want every server", file, cfg.Node.Servers)
	}
	cr := cfg.Node.Credentials
	if cr.TokenFile == "" && cr.APIKeyFile == "" && cr.APIKey == "" && (cfg.TLS.CAFile == "" || cfg.TLS.NodeCertFile == "") {
		t.Errorf("%s: the worker has no credentials", file)
	}
	if s := int64(cfg.Worker.ShutdownGrace.Std().Seconds()); s >= *d.Spec.Template.Spec.TerminationGracePeriodSeconds {
		t.Errorf("%s: worker.shutdown_grace %ds is not within terminationGracePeriodSeconds", file, s)
	}
	if c.ReadinessProbe == nil {
		t.Errorf("Deployment %s: no readiness probe", d.Name)
	}
	if tee := cfg.Proofs.Attester; tee != "" && tee != "software" {
		if cfg.Node.Labels["tee"] != tee {
			t.Errorf("%s: attester %s without the node label tee=%s", file, tee, tee)
		}
		var dev bool
		for name, q := range c.Resources.Limits {
			if strings.Contains(string(name), "/") && !q.IsZero() {
				dev = true
			}
		}
		if !dev || len(d.Spec.Template.Spec.NodeSelector) == 0 {
			t.Errorf("TEE pool %s: limits %v, nodeSelector %v: want the device resource and the node pool", d.Name, c.Resources.Limits, d.Spec.Template.Spec.NodeSelector)
		}
	}
}

// checkMonitoring: the ServiceMonitor selects the metrics Service, which
// selects servers and workers through a port named metrics; the
// PrometheusRule is the repository's rules file; one dashboard ConfigMap per
// repository dashboard, labelled for the sidecar.
func checkMonitoring(t *testing.T, objs []Object) {
	pods := map[string]map[string]string{}
	ports := map[string]bool{}
	for _, s := range find[*appsv1.StatefulSet](objs) {
		pods[s.Name] = s.Spec.Template.Labels
		ports[s.Name] = slices.ContainsFunc(container(t, &s.Spec.Template.Spec).Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" })
	}
	for _, d := range find[*appsv1.Deployment](objs) {
		pods[d.Name] = d.Spec.Template.Labels
		ports[d.Name] = slices.ContainsFunc(container(t, &d.Spec.Template.Spec).Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" })
	}
	for _, sm := range find[*monitoringv1.ServiceMonitor](objs) {
		sel := labels.SelectorFromSet(sm.Spec.Selector.MatchLabels)
		var svc *corev1.Service
		for _, s := range find[*corev1.Service](objs) {
			if sel.Matches(labels.Set(s.Labels)) {
				if svc != nil {
					t.Errorf("ServiceMonitor selects both %s and %s", svc.Name, s.Name)
				}
				svc = s
			}
		}
		if svc == nil {
			t.Fatalf("ServiceMonitor %s selects no Service", sm.Name)
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("ServiceMonitor port %q is not a port of Service %s", ep.Port, svc.Name)
			}
			var job bool
			for _, r := range ep.RelabelConfigs {
				if r.TargetLabel == "job" && r.Replacement != nil && strings.HasPrefix(*r.Replacement, "grey") {
					job = true
				}
			}
			if !job {
				t.Errorf("ServiceMonitor %s: the job label does not start with grey (GreyScrapeDown matches job=~\"grey.*\")", sm.Name)
			}
		}
		svcSel := labels.SelectorFromSet(svc.Spec.Selector)
		for name, l := range pods {
			if !svcSel.Matches(labels.Set(l)) || !ports[name] {
				t.Errorf("the metrics Service does not reach %s (selector %v, metrics port %v)", name, svc.Spec.Selector, ports[name])
			}
		}
	}
	for _, pr := range find[*monitoringv1.PrometheusRule](objs) {
		var want monitoringv1.PrometheusRuleSpec
		src, err := os.ReadFile(filepath.Join(repoRoot, "telemetry/alerts/grey-rules.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(src, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(pr.Spec, want) {
			t.Errorf("PrometheusRule %s differs from telemetry/alerts/grey-rules.yml", pr.Name)
		}
		if len(pr.Spec.Groups) == 0 {
			t.Error("PrometheusRule without groups")
		}
	}
	var dashboards []string
	for _, cm := range find[*corev1.ConfigMap](objs) {
		if cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		for k, v := range cm.Data {
			dashboards = append(dashboards, k)
			src, err := os.ReadFile(filepath.Join(repoRoot, "telemetry/dashboards", k))
			if err != nil {
				t.Errorf("dashboard %s: %v", k, err)
				continue
			}
			if strings.TrimSpace(string(src)) != strings.TrimSpace(v) {
				t.Errorf("dashboard ConfigMap %s differs from telemetry/dashboards/%s", cm.Name, k)
			}
		}
	}
	if len(dashboards) > 0 {
		want, _ := filepath.Glob(filepath.Join(repoRoot, "telemetry/dashboards/*.json"))
		for i := range want {
			want[i] = filepath.Base(want[i])
		}
		slices.Sort(dashboards)
		if !slices.Equal(dashboards, want) {
			t.Errorf("dashboards %v, want the repository's %v", dashboards, want)
		}
	}
}

// checkNetworkPolicies: the Raft port admits only server pods.
func checkNetworkPolicies(t *testing.T, ss *appsv1.StatefulSet, objs []Object) {
	serverLabels := labels.Set(ss.Spec.Template.Labels)
	var raftGuarded bool
	for _, np := range find[*networkingv1.NetworkPolicy](objs) {
		sel := labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels)
		if len(np.Spec.PodSelector.MatchExpressions) > 0 || !sel.Matches(serverLabels) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port == nil || p.Port.String() != "raft" {
					continue
				}
				raftGuarded = true
				if len(rule.From) == 0 {
					t.Errorf("NetworkPolicy %s opens raft to everyone", np.Name)
				}
				for _, peer := range rule.From {
					if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil ||
						!labels.SelectorFromSet(peer.PodSelector.MatchLabels).Matches(serverLabels) ||
						!reflect.DeepEqual(peer.PodSelector.MatchLabels, ss.Spec.Selector.MatchLabels) {
						t.Errorf("NetworkPolicy %s lets %+v reach raft", np.Name, peer)
					}
				}
			}
		}
	}
	if !raftGuarded && len(find[*networkingv1.NetworkPolicy](objs)) > 0 {
		t.Error("no NetworkPolicy guards the raft port")
	}
}

// checkCloud: the service account carries the cloud's identity binding and
// the servers back up to the cloud's bucket.
func checkCloud(t *testing.T, objs []Object, cm *corev1.ConfigMap) {
	sas := find[*corev1.ServiceAccount](objs)
	if len(sas) != 1 {
		t.Fatalf("%d ServiceAccounts", len(sas))
	}
	cfg := loadConfig(t, "server-0.yaml", cm.Data["server-0.yaml"])
	want := map[string]struct{ annotation, scheme string }{
		"aws":   {"eks.amazonaws.com/role-arn", "s3://"},
		"gcp":   {"iam.gke.io/gcp-service-account", "gs://"},
		"azure": {"azure.workload.identity/client-id", "azblob://"},
	}
	w, ok := want[cfg.Cloud.Provider]
	if !ok {
		if cfg.Raft.Backup.URL != "" {
			t.Errorf("no cloud, but backups to %s", cfg.Raft.Backup.URL)
		}
		return
	}
	if sas[0].Annotations[w.annotation] == "" {
		t.Errorf("%s: service account annotations %v lack %s", cfg.Cloud.Provider, sas[0].Annotations, w.annotation)
	}
	if !strings.HasPrefix(cfg.Raft.Backup.URL, w.scheme) {
		t.Errorf("%s: raft.backup.url %q", cfg.Cloud.Provider, cfg.Raft.Backup.URL)
	}
	for _, u := range []string{cfg.Tasks.DataURL, cfg.Executors.Wasm.ModuleURL} {
		if u != "" && !strings.HasPrefix(u, w.scheme) {
			t.Errorf("%s: bucket URL %q", cfg.Cloud.Provider, u)
		}
	}
	if cfg.Cloud.Provider == "azure" {
		for _, s := range find[*appsv1.StatefulSet](objs) {
			if s.Spec.Template.Labels["azure.workload.identity/use"] != "true" {
				t.Error("AKS server pods lack azure.workload.identity/use")
			}
		}
	}
}

// Values that would break quorum, lose backups or never schedule fail
// `helm template` with a message naming the value and the reason.
func TestBadValuesAreRefused(t *testing.T) {
	base := []string{"auth.adminTokenSecret=grey-admin"}
	cases := []struct {
		name  string
		files []string
		set   []string
		want  []string
	}{
		{"two servers", nil, []string{"servers.replicas=2"}, []string{"servers.replicas is 2", "even number", "use 1 or 3"}},
		{"four servers", nil, []string{"servers.replicas=4"}, []string{"servers.replicas is 4", "even number", "use 3 or 5"}},
		{"four servers OrderedReady", nil, []string{"servers.replicas=4", "servers.podManagementPolicy=OrderedReady"}, []string{"servers.replicas is 4 with podManagementPolicy OrderedReady", "deadlocks joins"}},
		{"three servers OrderedReady", nil, []string{"servers.podManagementPolicy=OrderedReady"}, []string{"OrderedReady is unsafe with 3 servers", "quorum"}},
		{"zero servers", nil, []string{"servers.replicas=0"}, []string{"servers/replicas", "minimum"}},
		{"nine servers", nil, []string{"servers.replicas=9"}, []string{"servers/replicas", "maximum"}},
		{"unknown policy", nil, []string{"servers.podManagementPolicy=Sometimes"}, []string{"podManagementPolicy"}},
		{"aws without bucket", []string{"values-eks.yaml"}, []string{"storage.bucket="}, []string{"storage.bucket is required with cloud.provider aws", "S3 bucket"}},
		{"gcp without bucket", []string{"values-gke.yaml"}, []string{"storage.bucket="}, []string{"storage.bucket is required with cloud.provider gcp", "GCS bucket"}},
		{"azure without bucket", []string{"values-aks.yaml"}, []string{"storage.bucket="}, []string{"storage.bucket is required with cloud.provider azure", "Azure Blob container"}},
		{"aws without role", []string{"values-eks.yaml"}, []string{"identity.aws.roleArn="}, []string{"identity.aws.roleArn is required", "IRSA"}},
		{"gcp without service account", []string{"values-gke.yaml"}, []string{"identity.gcp.serviceAccount="}, []string{"identity.gcp.serviceAccount is required", "Workload Identity"}},
		{"azure without client id", []string{"values-aks.yaml"}, []string{"identity.azure.clientId="}, []string{"identity.azure.clientId is required"}},
		{"azure without storage account", []string{"values-aks.yaml"}, []string{"cloud.azureStorageAccount="}, []string{"cloud.azureStorageAccount is required"}},
		{"bucket given as a URL", []string{"values-eks.yaml"}, []string{"storage.bucket=s3://grey"}, []string{"storage/bucket"}},
		{"unknown cloud", nil, []string{"cloud.provider=ibm"}, []string{"cloud/provider"}},
		{"TEE pool without device resource", []string{"values-aks.yaml"}, []string{"workers.teePools[0].name=sgx", "workers.teePools[0].tee=sgx", "workers.teePools[0].nodeSelector.pool=dcsv3"},
			[]string{"workers.teePools[sgx] (tee sgx) has no resourceName", "device plugin", "sgx.intel.com/epc"}},
		{"TEE pool without node pool", []string{"values-aks.yaml"}, []string{"workers.teePools[0].name=tdx", "workers.teePools[0].tee=tdx", "workers.teePools[0].resourceName=tdx.intel.com/tdx-guest"},
			[]string{"workers.teePools[tdx] has no nodeSelector"}},
		{"unknown TEE", []string{"values-aks.yaml"}, []string{"workers.teePools[0].name=x", "workers.teePools[0].tee=sev", "workers.teePools[0].resourceName=a/b", "workers.teePools[0].nodeSelector.a=b"}, []string{"tee"}},
		{"no admin token secret", nil, []string{"auth.adminTokenSecret="}, []string{"auth.adminTokenSecret is required"}},
		{"auth mode none", nil, []string{"auth.mode={none}"}, []string{"auth/mode"}},
		{"oidc without issuer", nil, []string{"auth.mode={oidc}"}, []string{"auth.oidc.issuer is required"}},
		{"tls without secret", nil, []string{"tls.enabled=true"}, []string{"tls.existingSecret is required"}},
		{"autoscaling without prometheus", nil, []string{"workers.autoscaling.enabled=true"}, []string{"workers.autoscaling.prometheusAddress is required"}},
		{"root user", nil, []string{"podSecurityContext.runAsNonRoot=false"}, []string{"runAsNonRoot"}},
		{"writable root", nil, []string{"securityContext.readOnlyRootFilesystem=false"}, []string{"readOnlyRootFilesystem"}},
		{"privilege escalation", nil, []string{"securityContext.allowPrivilegeEscalation=true"}, []string{"allowPrivilegeEscalation"}},
		{"unknown value", nil, []string{"servers.replica=3"}, []string{"replica"}},
		{"short grace", nil, []string{"servers.terminationGracePeriodSeconds=5"}, []string{"terminationGracePeriodSeconds must be at least 20"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var files []string
			for _, f := range c.files {
				files = append(files, filepath.Join(chartDir, f))
			}
			_, err := RenderManifest(context.Background(), Options{ChartDir: chartDir, ValueFiles: files, Set: append(append([]string{}, base...), c.set...)})
			if err == nil {
				t.Fatalf("rendered, want a refusal naming %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// The chart ships the repository's rules and dashboards, not copies that
// can drift: files/ holds links to telemetry/, and the rendered objects are
// compared with the sources above. This test fails if a link is replaced
// by a file that differs, or a dashboard is added without its link.
func TestChartFilesAreTheRepositorys(t *testing.T) {
	pairs := map[string]string{"files/grey-rules.yml": "telemetry/alerts/grey-rules.yml"}
	src, _ := filepath.Glob(filepath.Join(repoRoot, "telemetry/dashboards/*.json"))
	for _, s := range src {
		pairs["files/dashboards/"+filepath.Base(s)] = "telemetry/dashboards/" + filepath.Base(s)
	}
	in, _ := filepath.Glob(filepath.Join(chartDir, "files/dashboards/*.json"))
	if len(in) != len(src) {
		t.Errorf("chart has %d dashboards, telemetry/dashboards %d (add a link: ln -s ../../../../../telemetry/dashboards/NAME.json deploy/helm/grey/files/dashboards/)", len(in), len(src))
	}
	for chartPath, repoPath := range pairs {
		a, err := os.ReadFile(filepath.Join(chartDir, chartPath))
		if err != nil {
			t.Errorf("%s: %v", chartPath, err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, repoPath))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("deploy/helm/grey/%s differs from %s", chartPath, repoPath)
		}
	}
}
