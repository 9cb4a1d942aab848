package charttest

import (
	"context"
	"fmt"
	"testing"
)

func TestSmoke(t *testing.T) {
	m, err := RenderManifest(context.Background(), Options{ChartDir: "../helm/grey", Set: []string{"auth.adminTokenSecret=grey-admin", "monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true", "monitoring.dashboards.enabled=true"}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(m)
	if _, err := Decode(m); err != nil {
		t.Fatal(err)
	}
}
