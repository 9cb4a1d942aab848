// Package gctune sets greyd's garbage-collector target from the size of the
// live heap, and a soft memory limit from the container's.
//
// The collector's CPU cost is proportional to how often it runs times the
// live heap it marks; with GOGC=g it runs every g% of the live heap
// allocated, so its cost per allocated byte is about 1/g whatever the heap
// size. A fixed GOGC is a bad fit for a server whose live state ranges
// from a few megabytes (an idle node, or one streaming tasks through) to a
// gigabyte (a million pending tasks): a high GOGC wastes memory on a big
// heap, a low one burns CPU on a small one, where memory is plentiful.
//
// The tuner gives the heap a budget instead (the approach of Uber's GC
// tuner): while the live heap is small, GOGC is set so the collector runs
// only when the heap would pass Target bytes (at most High); as the live
// heap approaches Target, GOGC falls to Low, which keeps RSS near
// (1 + Low/100) × live for large states. It reads the live heap after
// collections, every interval.
//
// It also makes GOMEMLIMIT the default it should be in a container: when
// the environment sets no GOMEMLIMIT and the process runs under a cgroup
// v2 memory limit, the soft limit is 90% of it, so the collector works
// harder before the kernel kills the process, and Target is at most 45%
// of it. An explicit GOGC or GOMEMLIMIT in the environment wins over the
// tuner.
package gctune

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Policy says how GOGC follows the live heap.
type Policy struct {
	// Target is the heap size (bytes) the collector may let the heap grow
	// to before it runs, while the live heap is small.
	Target uint64
	// High bounds GOGC for tiny live heaps.
	High int
	// Low is the floor: GOGC once the live heap is near or over Target.
	Low int
}

// DefaultPolicy is greyd's: a 1 GiB heap budget, GOGC between 50 and
// 1000. Measured on a noop stream (100,000 tasks, one node): greyd spent
// 74–85 µs of CPU per task at GOGC 100 and 58 µs with the collector off;
// at a million pending tasks (~0.8 GiB live) GOGC is 50, which keeps RSS
// under 1.5 GiB.
var DefaultPolicy = Policy{Target: 1 << 30, High: 1000, Low: 50}

// Percent is the GOGC the policy gives for live bytes of live heap.
func (p Policy) Percent(live uint64) int {
	if live == 0 {
		return p.High
	}
	if live >= p.Target {
		return p.Low
	}
	g := (p.Target - live) * 100 / live
	switch {
	case g > uint64(p.High):
		return p.High
	case g < uint64(p.Low):
		return p.Low
	}
	return int(g)
}

// Start applies the policy until ctx ends, checking the live heap every
// interval, unless GOGC is set in the environment (then it only sets the
// memory limit). It returns what it did, for the log.
func Start(ctx context.Context, p Policy, interval time.Duration) string {
	var did []string
	if os.Getenv("GOMEMLIMIT") == "" {
		if lim, ok := cgroupLimit("/sys/fs/cgroup/memory.max"); ok {
			soft := lim / 10 * 9
			debug.SetMemoryLimit(int64(soft))
			did = append(did, "memory limit "+strconv.FormatUint(soft>>20, 10)+" MiB (90% of the cgroup's)")
			p = p.within(lim)
		}
	}
	if os.Getenv("GOGC") != "" {
		return strings.Join(append(did, "GOGC from the environment"), "; ")
	}
	cur := p.Percent(liveHeap())
	debug.SetGCPercent(cur)
	go p.run(ctx, interval, cur)
	return strings.Join(append(did, "heap budget "+strconv.FormatUint(p.Target>>20, 10)+" MiB, GOGC "+
		strconv.Itoa(p.Low)+"–"+strconv.Itoa(p.High)), "; ")
}

// within caps the policy's Target at 45% of a memory limit of lim bytes,
// so the budget plus the collector's slack stays under the limit.
func (p Policy) within(lim uint64) Policy {
	if c := lim / 100 * 45; c < p.Target {
		p.Target = c
	}
	return p
}

func (p Policy) run(ctx context.Context, interval time.Duration, cur int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		live := liveHeap()
		if live == 0 {
			return // the runtime lacks the metric: keep the starting GOGC
		}
		if want := p.Percent(live); want != cur {
			debug.SetGCPercent(want)
			cur = want
		}
	}
}

// liveHeap is the live heap after the last collection (0 when the runtime
// does not report it).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// cgroupLimit reads a cgroup v2 memory.max ("max" or absent: no limit).
func cgroupLimit(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}
