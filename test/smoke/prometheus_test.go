package smoke

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/grey-distributed/grey/internal/testenv"
)

// TestPrometheus asks Prometheus, through its HTTP API, for its own `up`.
func TestPrometheus(t *testing.T) {
	url := testenv.ServiceURL(t, "prometheus")
	ctx := ctxFor(t, 60*time.Second)
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	papi := promv1.NewAPI(c)
	eventually(t, 45*time.Second, func() error {
		v, _, _, err := papi.Query(ctx, `up{job="prometheus"}`, time.Now())
		if err != nil {
			return err
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) == 0 {
			return fmt.Errorf("no sample yet: %v", v)
		}
		if vec[0].Value != 1 {
			return fmt.Errorf("up = %v", vec[0].Value)
		}
		return nil
	})
}
