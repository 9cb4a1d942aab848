// Package charttest renders Grey's Helm chart (deploy/helm/grey) in-process
// with Helm's own library, as `helm template` does (values files, --set,
// values.schema.json, the templates' fail messages), and decodes every
// rendered object strictly into its API type: Kubernetes objects into
// k8s.io/api types and monitoring.coreos.com objects into
// prometheus-operator's, through the apimachinery strict serializer (an
// unknown or duplicated field is an error), and KEDA's ScaledObject into the
// local ScaledObject type with unknown fields refused.
//
// The chart's tests use it; so can a tool that wants the objects of a
// values file without a cluster.
package charttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// Options say what to render: the chart directory, values files (-f, in
// order), --set expressions, the release name and namespace.
type Options struct {
	// ChartDir is the chart's directory (deploy/helm/grey).
	ChartDir string
	// ValueFiles are applied in order, like helm's -f.
	ValueFiles []string
	// Set are helm --set expressions (a.b=c), applied after ValueFiles.
	Set []string
	// Release is the release name ("" = "grey").
	Release string
	// Namespace is the release namespace ("" = "grey").
	Namespace string
}

// Object is one rendered and decoded object.
type Object struct {
	// Source is the template that rendered it (the "# Source:" line).
	Source string
	// APIVersion, Kind and Name identify it.
	APIVersion, Kind, Name string
	// Obj is the decoded value: a typed Kubernetes or prometheus-operator
	// object (*appsv1.StatefulSet, *monitoringv1.PrometheusRule, …) or a
	// *ScaledObject.
	Obj any
}

// Render renders the chart like `helm template` and decodes every object
// strictly. A schema refusal or a template fail is returned as the error
// (its message is Helm's).
func Render(ctx context.Context, o Options) ([]Object, error) {
	manifest, err := RenderManifest(ctx, o)
	if err != nil {
		return nil, err
	}
	return Decode(manifest)
}

// RenderManifest renders the chart like `helm template` and returns the
// manifest text, undecoded.
func RenderManifest(ctx context.Context, o Options) (string, error) {
	ch, err := loader.Load(o.ChartDir)
	if err != nil {
		return "", fmt.Errorf("load chart %s: %w", o.ChartDir, err)
	}
	vals, err := (&values.Options{ValueFiles: o.ValueFiles, Values: o.Set}).MergeValues(getter.Providers{})
	if err != nil {
		return "", fmt.Errorf("values: %w", err)
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.NewTextHandler(io.Discard, nil))
	in := action.NewInstall(cfg)
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName = o.Release
	if in.ReleaseName == "" {
		in.ReleaseName = "grey"
	}
	in.Namespace = o.Namespace
	if in.Namespace == "" {
		in.Namespace = "grey"
	}
	in.Replace = true
	rel, err := in.RunWithContext(ctx, ch, vals)
	if err != nil {
		return "", err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return "", fmt.Errorf("helm returned a %T, not a v1 release", rel)
	}
	return r.Manifest, nil
}

// Decode splits a manifest into its documents and decodes each strictly
// into its API type.
func Decode(manifest string) ([]Object, error) {
	sch := runtime.NewScheme()
	if err := scheme.AddToScheme(sch); err != nil {
		return nil, err
	}
	if err := monitoringv1.AddToScheme(sch); err != nil {
		return nil, err
	}
	codec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, sch, sch, kjson.SerializerOptions{Yaml: true, Strict: true})
	var out []Object
	for _, doc := range splitDocs(manifest) {
		source := ""
		for _, line := range strings.Split(doc, "\n") {
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = s
				break
			}
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if meta.Kind == "" {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			return nil, fmt.Errorf("%s: a document without kind", source)
		}
		obj := Object{Source: source, APIVersion: meta.APIVersion, Kind: meta.Kind, Name: meta.Metadata.Name}
		if meta.APIVersion == ScaledObjectAPIVersion && meta.Kind == "ScaledObject" {
			so, err := decodeScaledObject([]byte(doc))
			if err != nil {
				return nil, fmt.Errorf("%s: ScaledObject %s: %w", source, meta.Metadata.Name, err)
			}
			obj.Obj = so
		} else {
			v, _, err := codec.Decode([]byte(doc), nil, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", source, meta.Kind, meta.Metadata.Name, err)
			}
			obj.Obj = v
		}
		out = append(out, obj)
	}
	return out, nil
}

func splitDocs(manifest string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+manifest, "\n---") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// ScaledObjectAPIVersion is the KEDA API group and version the chart writes.
const ScaledObjectAPIVersion = "keda.sh/v1alpha1"

// ScaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject
// (github.com/kedacore/keda apis/keda/v1alpha1, ScaledObjectSpec) that the
// chart uses, with KEDA's JSON names. Decoding refuses any other field, so a
// misspelt field in the chart fails the tests instead of being ignored by
// the cluster.
type ScaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec is KEDA's ScaledObjectSpec (the fields the chart uses).
type ScaledObjectSpec struct {
	ScaleTargetRef struct {
		APIVersion string `json:"apiVersion,omitempty"`
		Kind       string `json:"kind,omitempty"`
		Name       string `json:"name"`
	} `json:"scaleTargetRef"`
	PollingInterval *int32          `json:"pollingInterval,omitempty"`
	CooldownPeriod  *int32          `json:"cooldownPeriod,omitempty"`
	MinReplicaCount *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount *int32          `json:"maxReplicaCount,omitempty"`
	Triggers        []ScaleTriggers `json:"triggers"`
}

// ScaleTriggers is one KEDA trigger: its type and metadata strings.
type ScaleTriggers struct {
	Type     string            `json:"type"`
	Name     string            `json:"name,omitempty"`
	Metadata map[string]string `json:"metadata"`
}

func decodeScaledObject(doc []byte) (*ScaledObject, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var so ScaledObject
	if err := dec.Decode(&so); err != nil {
		return nil, err
	}
	if so.Spec.ScaleTargetRef.Name == "" || len(so.Spec.Triggers) == 0 {
		return nil, errors.New("spec.scaleTargetRef.name and spec.triggers are required")
	}
	for _, t := range so.Spec.Triggers {
		if t.Type != "prometheus" {
			return nil, fmt.Errorf("trigger type %q: the chart uses prometheus only", t.Type)
		}
		for _, k := range []string{"serverAddress", "query", "threshold"} {
			if t.Metadata[k] == "" {
				return nil, fmt.Errorf("prometheus trigger without %s", k)
			}
		}
	}
	return &so, nil
}
