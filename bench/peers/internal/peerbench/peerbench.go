// Package peerbench holds what the peer benchmarks (River, Asynq) share with
// each other and with `greyctl bench`: the plan of insert batches spread over
// queues, the concurrent inserters, the clock, the CPU accounting of this
// process and of the store's process tree, and the one JSON line each run
// prints.
package peerbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Modes of a run.
const (
	// ModeOverlap is greyctl bench's shape: the workers run before the first
	// insert, inserts and work overlap, and the clock runs from the first
	// insert to the last completion.
	ModeOverlap = "overlap"
	// ModePrefill inserts every job first (timed apart as insert_seconds),
	// then starts the workers; the clock runs from their start to the last
	// completion (River's own burn-down benchmark).
	ModePrefill = "prefill"
)

// Batch is one insert call: N jobs for queue Queue (an index).
type Batch struct {
	Queue int
	N     int
}

// Plan splits jobs evenly over queues and each queue's share into batches of
// at most batch jobs, interleaving the queues so they are inserted side by
// side, as greyctl bench spreads its tasks over tenants.
func Plan(jobs, queues, batch int) []Batch {
	per := make([][]Batch, queues)
	for q := range queues {
		n := jobs / queues
		if q < jobs%queues {
			n++
		}
		for n > 0 {
			b := min(n, batch)
			per[q] = append(per[q], Batch{Queue: q, N: b})
			n -= b
		}
	}
	var out []Batch
	for i := 0; ; i++ {
		added := false
		for q := range per {
			if i < len(per[q]) {
				out = append(out, per[q][i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// InsertAll runs insert for every batch of plan from concurrency goroutines
// and returns the first error (the others stop taking batches).
func InsertAll(ctx context.Context, plan []Batch, concurrency int, insert func(context.Context, Batch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan Batch)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range ch {
				if err := insert(ctx, b); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
feed:
	for _, b := range plan {
		select {
		case ch <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// QueueName is the name of queue q (0-based): bench-1, bench-2, … like
// greyctl bench's tenants.
func QueueName(q int) string { return "bench-" + strconv.Itoa(q+1) }

// Result is the JSON line a run prints. The first four fields are those the
// brief names; the rest say how the run was made and what it cost.
type Result struct {
	System         string  `json:"system"`
	Jobs           int     `json:"jobs"`
	Seconds        float64 `json:"seconds"`
	JobsPerSecond  float64 `json:"jobs_per_second"`
	Failed         int64   `json:"failed"`
	Mode           string  `json:"mode"`
	Queues         int     `json:"queues"`
	Workers        int     `json:"workers"`
	Batch          int     `json:"batch"`
	Concurrency    int     `json:"concurrency"`
	Insert         string  `json:"insert,omitempty"`
	InsertSeconds  float64 `json:"insert_seconds,omitempty"`
	ProcessCPUUs   float64 `json:"process_cpu_us_per_job"`
	StoreCPUUs     float64 `json:"store_cpu_us_per_job"`
	TotalCPUUs     float64 `json:"cpu_us_per_job"`
	StoreCPUSource string  `json:"store_cpu,omitempty"`
}

// Meter reads the CPU time of this process and, when storePID is not 0, of
// the store's process tree, at the start and end of the timed window.
type Meter struct {
	storePID       int
	self0, store0  time.Duration
	selfD, storeD  time.Duration
	storeAvailable bool
}

// NewMeter returns a meter for this process and storePID's tree (0: none).
func NewMeter(storePID int) *Meter { return &Meter{storePID: storePID} }

// Start reads the counters at the start of the window.
func (m *Meter) Start() {
	m.self0 = SelfCPU()
	if m.storePID != 0 {
		if d, err := TreeCPU(m.storePID); err == nil {
			m.store0, m.storeAvailable = d, true
		}
	}
}

// Stop reads them at the end of the window.
func (m *Meter) Stop() {
	m.selfD = SelfCPU() - m.self0
	if m.storeAvailable {
		if d, err := TreeCPU(m.storePID); err == nil {
			m.storeD = d - m.store0
		} else {
			m.storeAvailable = false
		}
	}
}

// Fill sets the result's CPU fields, per job.
func (m *Meter) Fill(r *Result) {
	if r.Jobs == 0 {
		return
	}
	per := func(d time.Duration) float64 { return round1(float64(d.Microseconds()) / float64(r.Jobs)) }
	r.ProcessCPUUs = per(m.selfD)
	r.TotalCPUUs = r.ProcessCPUUs
	if m.storeAvailable {
		r.StoreCPUUs = per(m.storeD)
		r.TotalCPUUs = per(m.selfD + m.storeD)
		r.StoreCPUSource = "pid " + strconv.Itoa(m.storePID) + " and children"
	}
}

// Finish fills the throughput fields from the window's length.
func (r *Result) Finish(elapsed time.Duration) {
	r.Seconds = round3(elapsed.Seconds())
	if elapsed > 0 {
		r.JobsPerSecond = round1(float64(r.Jobs) / elapsed.Seconds())
	}
}

// Print writes r as one JSON line.
func Print(w io.Writer, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// SelfCPU is this process's user + system CPU time so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's times; it is
// 100 on every architecture Go supports.
const clockTick = 10 * time.Millisecond

// TreeCPU is the CPU time of pid and its direct children: pid's own user and
// system time, what its reaped children used (cutime, cstime: PostgreSQL's
// finished backends), and the user and system time of its live children
// (open backends, the WAL writer, …). Read from /proc.
func TreeCPU(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	ticks := st.utime + st.stime + st.cutime + st.cstime
	entries, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, fmt.Errorf("list /proc: %w", err)
	}
	for _, e := range entries {
		child, err := strconv.Atoi(filepath.Base(filepath.Dir(e)))
		if err != nil || child == pid {
			continue
		}
		cs, err := readStat(child)
		if err != nil || cs.ppid != pid {
			continue // gone meanwhile, or not a child
		}
		ticks += cs.utime + cs.stime
	}
	return time.Duration(ticks) * clockTick, nil
}

type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// readStat parses /proc/PID/stat; the command name (field 2) is in
// parentheses and may hold spaces, so fields are counted after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, errors.New("stat: too few fields")
	}
	num := func(k int) (int64, error) { return strconv.ParseInt(f[k-3], 10, 64) }
	var st procStat
	var err error
	var p int64
	if p, err = num(4); err != nil {
		return procStat{}, fmt.Errorf("stat ppid: %w", err)
	}
	st.ppid = int(p)
	for k, dst := range map[int]*int64{14: &st.utime, 15: &st.stime, 16: &st.cutime, 17: &st.cstime} {
		if *dst, err = num(k); err != nil {
			return procStat{}, fmt.Errorf("stat field %d: %w", k, err)
		}
	}
	return st, nil
}

// Seconds is d in seconds, rounded to the millisecond.
func Seconds(d time.Duration) float64 { return round3(d.Seconds()) }
