package charttest

import (
	"strings"
	"testing"
)

// Decode takes any manifest text without panicking; what it accepts has a
// kind and a decoded value for every object.
func FuzzDecode(f *testing.F) {
	f.Add("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n")
	f.Add("---\n# Source: x\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}}}\n")
	f.Add("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec:\n  scaleTargetRef: {name: w}\n  triggers:\n  - type: prometheus\n    metadata: {serverAddress: http://p, query: up, threshold: \"1\"}\n")
	f.Add("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIp: None}\n")
	f.Add("kind: [\n")
	f.Fuzz(func(t *testing.T, manifest string) {
		objs, err := Decode(manifest)
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.Kind == "" || o.Obj == nil {
				t.Fatalf("accepted an object without kind or value: %+v", o)
			}
		}
		_ = strings.TrimSpace(manifest)
	})
}

// An unknown field (spec.clusterIp, misspelt) is an error, as in every
// rendered object.
func TestDecodeRefusesUnknownFields(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIp: None}\n",
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec: {replica: 3}\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\nspec: {endpoint: []}\n",
		"apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec:\n  scaleTargetRef: {name: w}\n  minReplicas: 1\n  triggers:\n  - type: prometheus\n    metadata: {serverAddress: http://p, query: up, threshold: \"1\"}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\ndata: {k: w}\n",
		"apiVersion: example.com/v1\nkind: Unknown\nmetadata: {name: a}\n",
	} {
		if _, err := Decode(doc); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}
