package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serverCost is what the servers spent, read from their Prometheus
// endpoints: the process collector's CPU seconds and the Go runtime's heap
// allocations, summed over every server named.
type serverCost struct {
	cpuSeconds float64
	mallocs    float64
	// inference holds the grey_inference_* counters (zero when absent).
	inference inferenceStats
}

// maxMetricsBytes bounds one scrape: a greyd's /metrics is tens of KiB.
const maxMetricsBytes = 16 << 20

// scrapeCost reads process_cpu_seconds_total and go_memstats_mallocs_total
// from each of urls and sums them.
func scrapeCost(ctx context.Context, hc *http.Client, urls []string) (serverCost, error) {
	var sum serverCost
	for _, u := range urls {
		c, err := scrapeOne(ctx, hc, u)
		if err != nil {
			return serverCost{}, err
		}
		sum.cpuSeconds += c.cpuSeconds
		sum.mallocs += c.mallocs
		sum.inference.add2(c.inference)
	}
	return sum, nil
}

func scrapeOne(ctx context.Context, hc *http.Client, u string) (serverCost, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return serverCost{}, fmt.Errorf("--server-metrics %s: %w", u, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := hc.Do(req)
	if err != nil {
		return serverCost{}, fmt.Errorf("--server-metrics %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverCost{}, fmt.Errorf("--server-metrics %s: HTTP %d", u, resp.StatusCode)
	}
	return parseCost(io.LimitReader(resp.Body, maxMetricsBytes), u)
}

// parseCost reads the two families from a text exposition; a server
// without them (not a greyd, or its process collector unsupported on the
// platform) is an error naming what is missing.
func parseCost(r io.Reader, from string) (serverCost, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return serverCost{}, fmt.Errorf("--server-metrics %s: %w", from, err)
	}
	var c serverCost
	c.inference.add(fams)
	for _, fam := range []struct {
		name string
		dst  *float64
	}{{"process_cpu_seconds_total", &c.cpuSeconds}, {"go_memstats_mallocs_total", &c.mallocs}} {
		name, dst := fam.name, fam.dst
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			return serverCost{}, fmt.Errorf("--server-metrics %s: no %s (is it a greyd's metrics listener?)", from, name)
		}
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				*dst += m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				*dst += m.GetUntyped().GetValue()
			case m.GetGauge() != nil:
				*dst += m.GetGauge().GetValue()
			}
		}
	}
	return c, nil
}

// perTask fills res's server cost fields from the samples before and
// after a run of tasks finished tasks.
func (res *benchResult) perTask(before, after serverCost, tasks int) {
	if tasks <= 0 {
		return
	}
	cpu := round((after.cpuSeconds-before.cpuSeconds)/float64(tasks)*1e6, 2)
	allocs := round((after.mallocs-before.mallocs)/float64(tasks), 1)
	res.ServerCPUMicros, res.ServerAllocs = &cpu, &allocs
}
