package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// benchConfig is what the bench flags ask for.
type benchConfig struct {
	// Scenario names the benchmark (a key of scenarios).
	Scenario string
	// Tasks is the total number of tasks.
	Tasks int
	// Tenants is the number of tenants (bench-1..bench-N) sharing them.
	Tenants int
	// Kind of every task.
	Kind string
	// Payload of every task (nil for none).
	Payload json.RawMessage
	// Payloads, when not empty, replace Payload: each task gets one of
	// them at random (--model's random inference requests).
	Payloads []json.RawMessage
	// PayloadBinary (--payload-binary, with --model) sends the requests
	// in the Open Inference Protocol binary form: Bodies, each uploaded
	// once per tenant before the run, and the tasks name them by
	// payload_ref instead of carrying a JSON payload.
	PayloadBinary bool
	Bodies        [][]byte
	// Model is the model --model names ("" for none); its tasks are of
	// kind inference with random inputs of InputShape and Datatype.
	Model      string
	InputShape string
	InputName  string
	Datatype   string
	// Batch is the number of tasks per submit request.
	Batch int
	// Concurrency is the number of concurrent submitters.
	Concurrency int
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Progress is the interval of progress lines on stderr (0 = none).
	Progress time.Duration
	// ATasks and BTasks are the tasks of the noisy and the quiet tenant of
	// the noisy-neighbor scenario (BTasks 0: the noisy tenant alone).
	ATasks, BTasks int
	// Module is the path of a .wasm module (--module; "-" = stdin) pushed
	// for every tenant before the run and named in every task's payload;
	// "" for none.
	Module string
	// ServerMetrics are the servers' Prometheus endpoints whose CPU and
	// allocation counters the run reads before and after.
	ServerMetrics []string
}

// benchResult is the single JSON line a benchmark prints.
type benchResult struct {
	// Tasks is the number of tasks asked for.
	Tasks int `json:"tasks"`
	// Seconds is the time from the first submit to the last completion.
	Seconds float64 `json:"seconds"`
	// TasksPerSecond is the finished tasks over Seconds.
	TasksPerSecond float64 `json:"tasks_per_second"`
	// P50Ms and P99Ms are percentiles of the submit → completion latency.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// Failed counts tasks that finished failed or cancelled.
	Failed int `json:"failed"`
	// Module is the digest of the module --module pushed ("" without).
	Module string `json:"module,omitempty"`
	// ModulePushMs is how long the first push of the module took: on a
	// server that had not seen it, its cold compile plus the upload.
	ModulePushMs float64 `json:"module_push_ms,omitempty"`
	// ServerCPUMicros is the servers' CPU time per task in microseconds
	// and ServerAllocs their heap allocations per task, from the
	// --server-metrics endpoints read before and after the run (absent
	// without them).
	ServerCPUMicros *float64 `json:"server_cpu_us_per_task,omitempty"`
	ServerAllocs    *float64 `json:"server_allocs_per_task,omitempty"`
	// Model is the model --model named ("" without).
	Model string `json:"model,omitempty"`
	// Inference is the servers' inference counters over the run (with
	// --model and --server-metrics, when the servers expose them).
	Inference *inferenceResult `json:"inference,omitempty"`
}

// scenario runs one benchmark. It returns the result to print (nil when
// nothing could be measured) and an error when the run went wrong (timeout,
// rejected submissions, broken watch); failed tasks are reported in the
// result, not as an error.
type scenario func(ctx context.Context, a *app, cfg benchConfig) (*benchResult, error)

// scenarios are the benchmarks --scenario can name.
var scenarios = map[string]scenario{
	"throughput":     runThroughput,
	"latency":        runLatency,
	"noisy-neighbor": runNoisyNeighbor,
}

func newBenchCmd(a *app) *cobra.Command {
	var (
		cfg     benchConfig
		payload string
		quiet   bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark the cluster and print one JSON line of results",
		Long: `Benchmark the cluster and print one JSON line of results:

  {"tasks":N,"seconds":S,"tasks_per_second":R,"p50_ms":…,"p99_ms":…,"failed":F}

With --server-metrics (each server's Prometheus endpoint) the line adds
"server_cpu_us_per_task" and "server_allocs_per_task": the servers' CPU time
(process_cpu_seconds_total) and heap allocations (go_memstats_mallocs_total)
over the run, summed over the servers named, per task. The counters are read
just before the first submit and after the last completion, so they include
whatever else the servers did meanwhile: measure on an otherwise idle cluster.

Scenario "throughput" spreads --tasks over --tenants tenants (bench-1..bench-M).
It first opens a watch per tenant, then submits in batches of --batch from
--concurrency concurrent submitters. Latency runs from just before a task's
batch request was sent to the arrival of its completion event; seconds run
from the first submit to the last completion. The exit code is 1 when a task
failed or the run timed out.

Scenario "latency" submits --tasks tasks one at a time, each after the
previous finished; p50_ms/p99_ms are submit → start from the server's stamps.

Scenario "noisy-neighbor" measures fair share. Tenant noisy-a submits
--a-tasks tasks at once (batches of --batch, default 1000 here, from
--concurrency submitters) while tenant quiet-b submits --b-tasks tasks, one
every 10 ms from the same moment. It prints its own line:

  {"scenario":"noisy-neighbor","b_p50_ms":…,"b_p99_ms":…,"b_max_ms":…,"a_seconds":…}

B's latency is submit → start from the server's created_at and started_at
stamps; a_seconds runs from A's first submit to A's last completion. With
--b-tasks 0 the b_* fields are null (A alone, the baseline of a_seconds).

--model M runs inference tasks (it implies --kind inference) on the tenants'
model M (name, name:version or name@alias; push it first with greyctl model
push, as each bench-N tenant): each task is an Open Inference Protocol request
with one input tensor named --input-name (default input__0) of --input-shape
(default 1,16) and --datatype (default FP32), filled with random values (256
distinct requests, picked at random). The line adds "model", and with
--server-metrics an "inference" object from the servers' grey_inference_*
metrics over the run: cache_hit_rate, model_loads, model_load_ms (mean),
mean_batch_size and mean_queue_delay_ms.

--module FILE runs wasm tasks (it implies --kind wasm): the module is pushed
for every tenant of the scenario first (as "greyctl module push" does) and
every task's payload names its digest; --payload, if given, is the rest of
the wasm payload (for example '{"input":"hello"}'). The throughput and
latency lines then end with "module":"sha256:…" and "module_push_ms":…, the
first push's duration: on a server that had not seen the module, its cold
compile (a server compiles a module when it is uploaded) plus the upload.`,
		Example: `  greyctl bench --tasks 100000 --tenants 4 --kind noop --batch 500 --concurrency 8
  greyctl bench --scenario noisy-neighbor --a-tasks 20000 --b-tasks 100
  greyctl bench --tasks 50000 --module examples/wasm/echo/echo.wasm --payload '{"input":"hello"}'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc, ok := scenarios[cfg.Scenario]
			if !ok {
				return usageErrorf("--scenario %q: want one of %s", cfg.Scenario, strings.Join(slices.Sorted(maps.Keys(scenarios)), ", "))
			}
			switch {
			case cfg.Tasks < 1:
				return usageErrorf("--tasks must be at least 1")
			case cfg.Tenants < 1:
				return usageErrorf("--tenants must be at least 1")
			case cfg.Batch < 1 || cfg.Batch > 1000:
				return usageErrorf("--batch must be between 1 and 1000")
			case cfg.Concurrency < 1:
				return usageErrorf("--concurrency must be at least 1")
			case cfg.Timeout <= 0:
				return usageErrorf("--timeout must be positive")
			case cfg.Kind == "":
				return usageErrorf("--kind must not be empty")
			case cfg.ATasks < 1:
				return usageErrorf("--a-tasks must be at least 1")
			case cfg.BTasks < 0:
				return usageErrorf("--b-tasks must not be negative")
			case cfg.Module != "" && cmd.Flags().Changed("kind") && cfg.Kind != wasmKind:
				return usageErrorf("--module runs wasm tasks, not --kind %s", cfg.Kind)
			case cfg.Module == "-" && payload == "@-":
				return usageErrorf("--module - and --payload @- cannot both read stdin")
			case cfg.Model != "" && (cfg.Module != "" || payload != ""):
				return usageErrorf("--model makes its own payloads: not with --module or --payload")
			case cfg.Model != "" && cmd.Flags().Changed("kind") && cfg.Kind != ai.Kind:
				return usageErrorf("--model runs inference tasks, not --kind %s", cfg.Kind)
			case cfg.Model == "" && cfg.Kind == ai.Kind:
				return usageErrorf("--kind inference needs --model")
			case cfg.PayloadBinary && cfg.Model == "":
				return usageErrorf("--payload-binary sends --model's requests in the binary form: it needs --model")
			case cfg.PayloadBinary && cfg.Scenario != "throughput":
				return usageErrorf("--payload-binary runs with --scenario throughput only")
			}
			if cfg.Scenario == "noisy-neighbor" && !cmd.Flags().Changed("batch") {
				cfg.Batch = 1000
			}
			var err error
			if cfg.Payload, err = parsePayload(payload, os.ReadFile, a.stdin); err != nil {
				return err
			}
			if cfg.Model != "" {
				shape, err := parseShape(cfg.InputShape)
				if err != nil {
					return err
				}
				rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15))
				if cfg.Payloads, err = inferenceRequests(cfg.Model, cfg.InputName, shape, ai.Datatype(strings.ToUpper(cfg.Datatype)), inferencePayloads, rng); err != nil {
					return err
				}
				if cfg.PayloadBinary {
					if cfg.Bodies, err = binaryBodies(cfg.Payloads); err != nil {
						return err
					}
					cfg.Payloads = nil
				}
				cfg.Kind = ai.Kind
			}
			var mod *benchModule
			if cfg.Module != "" {
				if mod, err = readBenchModule(cfg.Module, os.ReadFile, a.stdin); err != nil {
					return err
				}
				if cfg.Payload, err = wasmPayload(cfg.Payload, mod.digest); err != nil {
					return err
				}
				cfg.Kind = wasmKind
			}
			if quiet {
				cfg.Progress = 0
			}
			if a.httpClient == nil {
				a.httpClient = &http.Client{Transport: benchTransport(cfg.Concurrency + cfg.Tenants)}
			}
			// A server that is down or not ready fails the bench at once
			// (the client would otherwise retry until --timeout).
			rc, err := a.client("")
			if err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			err = rc.Ready(rctx)
			cancel()
			if err != nil {
				return failure(fmt.Errorf("the server is not ready: %w", err))
			}
			var pushed time.Duration
			if mod != nil {
				pctx, cancel := context.WithTimeout(cmd.Context(), cfg.Timeout)
				pushed, err = pushBenchModule(pctx, a, scenarioTenants(cfg), mod)
				cancel()
				if err != nil {
					return failure(err)
				}
				if cfg.Progress > 0 {
					fmt.Fprintf(a.stderr, "bench: pushed %s (%s, %d bytes) in %s\n", cfg.Module, mod.digest, len(mod.wasm), pushed.Round(time.Microsecond))
				}
			}
			var before serverCost
			if len(cfg.ServerMetrics) > 0 {
				if before, err = scrapeCost(cmd.Context(), a.httpClient, cfg.ServerMetrics); err != nil {
					return failure(err)
				}
			}
			res, runErr := sc(cmd.Context(), a, cfg)
			if res != nil && len(cfg.ServerMetrics) > 0 && runErr == nil {
				after, err := scrapeCost(cmd.Context(), a.httpClient, cfg.ServerMetrics)
				if err != nil {
					return failure(err)
				}
				res.perTask(before, after, res.Tasks)
				if cfg.Model != "" {
					res.Inference = inferenceDelta(before.inference, after.inference)
				}
			}
			if res != nil {
				res.Model = cfg.Model
			}
			if res != nil && mod != nil {
				res.Module = mod.digest
				res.ModulePushMs = round(ms(pushed), 3)
			}
			if res != nil {
				if err := writeJSONLine(a.stdout, res); err != nil {
					return err
				}
			}
			if runErr != nil {
				return failure(runErr)
			}
			if res != nil && res.Failed > 0 {
				return failure(fmt.Errorf("%d of %d tasks failed or were cancelled", res.Failed, res.Tasks))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Scenario, "scenario", "throughput", "benchmark to run")
	f.IntVar(&cfg.Tasks, "tasks", 1000, "total number of tasks")
	f.IntVar(&cfg.Tenants, "tenants", 1, "number of tenants (bench-1..bench-M)")
	f.StringVar(&cfg.Kind, "kind", "noop", "task kind")
	f.StringVar(&payload, "payload", "", "task payload: JSON, @FILE or @-")
	f.IntVar(&cfg.Batch, "batch", 500, "tasks per submit request (1-1000)")
	f.IntVar(&cfg.Concurrency, "concurrency", 4, "concurrent submitters")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "give up after this long")
	f.DurationVar(&cfg.Progress, "progress", 5*time.Second, "interval of progress lines on stderr (0 = none)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	f.IntVar(&cfg.ATasks, "a-tasks", 20000, "noisy-neighbor: tasks of the noisy tenant (noisy-a)")
	f.IntVar(&cfg.BTasks, "b-tasks", 100, "noisy-neighbor: tasks of the quiet tenant (quiet-b), one every 10ms; 0 = the noisy tenant alone")
	f.StringSliceVar(&cfg.ServerMetrics, "server-metrics", nil, "greyd metrics endpoints (http://host:9090/metrics; repeat or comma-separate for every server): print the servers' CPU µs and allocations per task")
	f.StringVar(&cfg.Model, "model", "", "inference: run inference tasks on this model (name, name:version or name@alias; the tenants must have it) with random inputs (implies --kind inference)")
	f.StringVar(&cfg.InputShape, "input-shape", "1,16", "inference: shape of the random input tensor, batch dimension first")
	f.StringVar(&cfg.Datatype, "datatype", "FP32", "inference: datatype of the random input tensor (FP32, FP64, INT64, ...)")
	f.StringVar(&cfg.InputName, "input-name", "input__0", "inference: name of the input tensor")
	f.BoolVar(&cfg.PayloadBinary, "payload-binary", false, "inference: send the requests in the Open Inference Protocol binary form, each uploaded once per tenant and named by payload_ref")
	f.StringVar(&cfg.Module, "module", "", "wasm: push this .wasm module (- for stdin) for every tenant and name it in each task's payload (implies --kind wasm)")
	return cmd
}

// benchTransport keeps enough idle connections for conns concurrent requests.
func benchTransport(conns int) http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConns = conns + 16
	t.MaxIdleConnsPerHost = conns + 16
	return t
}

// terminal lists the statuses the benchmark watches for.
var terminal = []task.Status{task.Completed, task.Failed, task.Cancelled}

// runThroughput is the "throughput" scenario.
func runThroughput(ctx context.Context, a *app, cfg benchConfig) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	clients := make([]*client.Client, cfg.Tenants)
	for i := range clients {
		c, err := a.client(fmt.Sprintf("bench-%d", i+1))
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}

	// Watch every tenant before the first submit, so no completion is missed.
	tr := newTracker(cfg.Tasks)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr, err := watchCompletions(ctx, watchCtx, clients, tr)
	if err != nil {
		return nil, err
	}

	s := &submitter{clients: clients, cfg: cfg, tr: tr}
	if len(cfg.Bodies) > 0 {
		if s.refs, err = uploadBodies(ctx, clients, cfg.Bodies); err != nil {
			return nil, err
		}
	}
	submitErr := make(chan error, 1)
	go func() { submitErr <- s.run(ctx) }()

	var tick <-chan time.Time
	if cfg.Progress > 0 {
		t := time.NewTicker(cfg.Progress)
		defer t.Stop()
		tick = t.C
	}
	// On a terminal, a bar of finished tasks (stderr; off with -o json).
	bar := a.newProgress("bench: finished", int64(cfg.Tasks), false)
	defer bar.Finish()
	var barTick <-chan time.Time
	if bar != nil {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		barTick = t.C
	}
	for {
		select {
		case <-barTick:
			_, fin := tr.progress()
			bar.Set(int64(fin))
		case <-tr.done:
			_, fin := tr.progress()
			bar.Set(int64(fin))
			return tr.result(), nil
		case err := <-submitErr:
			if err != nil {
				return tr.result(), fmt.Errorf("submit: %w", err)
			}
			submitErr = nil // all submitted; keep waiting for completions
		case err := <-watchErr:
			return tr.result(), err
		case <-ctx.Done():
			what := "timed out"
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				what = "interrupted"
			}
			sub, fin := tr.progress()
			return tr.result(), fmt.Errorf("%s after %s: %d of %d tasks submitted, %d finished", what, cfg.Timeout, sub, cfg.Tasks, fin)
		case <-tick:
			sub, fin := tr.progress()
			fmt.Fprintf(a.stderr, "bench: %d/%d submitted, %d finished, %d submit retries\n", sub, cfg.Tasks, fin, s.retries.Load())
		}
	}
}

// watchCompletions opens a watch of terminal changes per client, feeding
// tr, and returns once all are open (or with the first error, or when ctx
// ends). Errors of the watches later on (a broken stream may have lost
// completions) arrive on the returned channel; the watches end with
// watchCtx.
func watchCompletions(ctx, watchCtx context.Context, clients []*client.Client, tr *tracker) (<-chan error, error) {
	watchErr := make(chan error, len(clients))
	var connected sync.WaitGroup
	for _, c := range clients {
		connected.Add(1)
		var once sync.Once
		var wasConnected atomic.Bool
		opts := client.WatchOptions{
			Status: terminal,
			OnConnect: func() {
				wasConnected.Store(true)
				once.Do(connected.Done)
			},
			// Completions missed while reconnecting would never be counted.
			OnDisconnect: func(err error) {
				if !wasConnected.Load() {
					return // not open yet: nothing missed, keep trying
				}
				select {
				case watchErr <- fmt.Errorf("watch of tenant %s broke, completions may be lost: %w", c.Tenant(), err):
				default:
				}
			},
		}
		go func() {
			err := c.Watch(watchCtx, opts, tr.observe)
			if watchCtx.Err() == nil {
				select {
				case watchErr <- fmt.Errorf("watch of tenant %s: %w", c.Tenant(), err):
				default:
				}
			}
		}()
	}
	allConnected := make(chan struct{})
	go func() { connected.Wait(); close(allConnected) }()
	select {
	case <-allConnected:
		return watchErr, nil
	case err := <-watchErr:
		return nil, err
	case <-ctx.Done():
		return nil, fmt.Errorf("watch streams did not open: %w", ctx.Err())
	}
}

// batchJob is one submit request: n tasks for tenant (an index of clients).
type batchJob struct {
	tenant int
	n      int
}

// planBatches splits tasks evenly over tenants and each tenant's share into
// batches, interleaving tenants so they are submitted side by side.
func planBatches(tasks, tenants, batch int) []batchJob {
	var perTenant [][]batchJob
	for i := range tenants {
		n := tasks / tenants
		if i < tasks%tenants {
			n++
		}
		var jobs []batchJob
		for n > 0 {
			b := min(n, batch)
			jobs = append(jobs, batchJob{tenant: i, n: b})
			n -= b
		}
		perTenant = append(perTenant, jobs)
	}
	var out []batchJob
	for round := 0; ; round++ {
		added := false
		for _, jobs := range perTenant {
			if round < len(jobs) {
				out = append(out, jobs[round])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// submitter sends the batches with cfg.Concurrency workers.
type submitter struct {
	clients []*client.Client
	cfg     benchConfig
	tr      *tracker
	retries atomic.Int64
	// refs[tenant] are the payload_refs of cfg.Bodies uploaded for that
	// tenant (--payload-binary); nil otherwise.
	refs [][]string
}

// run submits every batch; the first error that a retry cannot fix stops it.
func (s *submitter) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan batchJob)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				if err := s.submit(ctx, j); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for _, j := range planBatches(s.cfg.Tasks, len(s.clients), s.cfg.Batch) {
		select {
		case jobs <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// submit sends one batch, retrying while the server pushes back (rate limits,
// quotas, leader changes): those answers mean nothing was created.
func (s *submitter) submit(ctx context.Context, j batchJob) error {
	specs := make([]task.Spec, j.n)
	for i := range specs {
		if s.refs != nil {
			r := s.refs[j.tenant]
			specs[i] = task.Spec{Kind: s.cfg.Kind, PayloadRef: r[rand.IntN(len(r))]}
			continue
		}
		specs[i] = task.Spec{Kind: s.cfg.Kind, Payload: s.cfg.payloadAt()}
	}
	delay := 50 * time.Millisecond
	for {
		at := time.Now()
		ts, err := s.clients[j.tenant].SubmitBatch(ctx, specs)
		if err == nil {
			if len(ts) != len(specs) {
				return fmt.Errorf("submitted %d tasks, server returned %d", len(specs), len(ts))
			}
			s.tr.submitted(at, ts)
			return nil
		}
		if !retryable(err) {
			return err
		}
		s.retries.Add(1)
		wait := delay
		var ge *greyerr.Error
		if errors.As(err, &ge) && ge.RetryAfter > 0 {
			wait = min(ge.RetryAfter, 10*time.Second)
		}
		delay = min(2*delay, 2*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// retryable reports whether a refused submit may pass later: the server
// pushed back (a rate limit, a quota, a leader change), except for a batch
// larger than the tenant's submit_burst, which never passes.
func retryable(err error) bool {
	var ge *greyerr.Error
	if errors.As(err, &ge) && ge.Reason == "submit_burst" {
		return false
	}
	return greyerr.Is(err, greyerr.ResourceExhausted) || greyerr.Is(err, greyerr.Unavailable)
}

// tracker matches submissions with completion events. An event may arrive
// before the submit response that names its task; it is kept until then.
type tracker struct {
	mu        sync.Mutex
	want      int
	pending   map[task.ID]time.Time   // submitted, not finished: submit time
	early     map[task.ID]finishEvent // finished, submit response not yet seen
	finished  map[task.ID]bool
	submitN   int
	latencies []time.Duration
	failed    int
	first     time.Time // first submit
	last      time.Time // last completion
	done      chan struct{}
}

type finishEvent struct {
	at     time.Time
	status task.Status
}

func newTracker(want int) *tracker {
	return &tracker{
		want:     want,
		pending:  make(map[task.ID]time.Time, want),
		early:    map[task.ID]finishEvent{},
		finished: make(map[task.ID]bool, want),
		done:     make(chan struct{}),
	}
}

// submitted records tasks whose batch request was sent at at.
func (tr *tracker) submitted(at time.Time, ts []*task.Task) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.first.IsZero() || at.Before(tr.first) {
		tr.first = at
	}
	for _, t := range ts {
		tr.submitN++
		if ev, ok := tr.early[t.ID]; ok {
			delete(tr.early, t.ID)
			tr.finish(t.ID, at, ev)
			continue
		}
		tr.pending[t.ID] = at
	}
}

// observe is the Watch callback: it records a terminal event.
func (tr *tracker) observe(t *task.Task) error {
	if !t.Status.Terminal() {
		return nil
	}
	ev := finishEvent{at: time.Now(), status: t.Status}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.finished[t.ID] {
		return nil
	}
	if at, ok := tr.pending[t.ID]; ok {
		delete(tr.pending, t.ID)
		tr.finish(t.ID, at, ev)
		return nil
	}
	if _, ok := tr.early[t.ID]; !ok {
		tr.early[t.ID] = ev
	}
	return nil
}

// finish counts one finished task; tr.mu is held.
func (tr *tracker) finish(id task.ID, submitted time.Time, ev finishEvent) {
	tr.finished[id] = true
	tr.latencies = append(tr.latencies, max(ev.at.Sub(submitted), 0))
	if ev.status != task.Completed {
		tr.failed++
	}
	if ev.at.After(tr.last) {
		tr.last = ev.at
	}
	if len(tr.finished) == tr.want {
		close(tr.done)
	}
}

// progress returns how many tasks were submitted and finished so far.
func (tr *tracker) progress() (submitted, finished int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.submitN, len(tr.finished)
}

// result summarises the run so far.
func (tr *tracker) result() *benchResult {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r := &benchResult{Tasks: tr.want, Failed: tr.failed}
	n := len(tr.latencies)
	if n == 0 {
		return r
	}
	secs := tr.last.Sub(tr.first).Seconds()
	r.Seconds = round(secs, 3)
	if secs > 0 {
		r.TasksPerSecond = round(float64(n)/secs, 1)
	}
	lat := slices.Clone(tr.latencies)
	slices.Sort(lat)
	r.P50Ms = round(ms(percentile(lat, 0.50)), 2)
	r.P99Ms = round(ms(percentile(lat, 0.99)), 2)
	return r
}

// percentile returns the nearest-rank p-th percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
