package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

func newTaskCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Submit, inspect, list, cancel, wait for and replay tasks",
		RunE:  groupRun,
	}
	cmd.AddCommand(newSubmitCmd(a), newGetCmd(a), newListCmd(a), newCancelCmd(a), newWaitCmd(a), newReplayCmd(a), newResultCmd(a))
	return cmd
}

// submitFlags are the flags of "task submit".
type submitFlags struct {
	kind           string
	typ            string
	payload        string
	payloadFile    string
	payloadRef     string
	payloadBinary  string
	upload         bool
	priority       int
	idempotencyKey string
	dependsOn      []string
	stateKey       string
	timeout        time.Duration
	maxRetries     int
	runAt          string
	labels         []string
	gpu            float64
	headers        []string
	wait           bool
	waitTimeout    time.Duration
}

func newSubmitCmd(a *app) *cobra.Command {
	var sf submitFlags
	cmd := &cobra.Command{
		Use:   "submit --kind KIND [flags]",
		Short: "Submit a task",
		Long: `Submit a task and print its id (or, with -o json, the task).

With --wait, wait for the task to finish and print it; the exit code is 1 when
it failed or was cancelled.

A payload over the inline limit (1 MiB, the server's default
tasks.max_payload_bytes) is uploaded through a signed URL (POST
/api/v1/uploads) and the task submitted with its payload_ref; --upload does so
for any payload. --payload-ref names an object uploaded before.`,
		Example: `  greyctl task submit --kind echo --payload '{"msg":"hi"}'
  greyctl task submit --kind resize --payload @job.json --label gpu=true --wait
  greyctl task submit --kind report --run-at +10m --idempotency-key report-2026-01
  greyctl task submit --kind echo --payload-file big.json --wait   # over 1 MiB: uploaded, sent as payload_ref
  greyctl task submit --kind inference --payload-binary request.bin --wait   # an OIP binary body, uploaded`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := sf.spec(cmd, time.Now(), os.ReadFile, a.stdin)
			if err != nil {
				return err
			}
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			if sf.payloadBinary != "" {
				if len(spec.Payload) > 0 || spec.PayloadRef != "" {
					return usageErrorf("--payload-binary excludes --payload, --payload-file and --payload-ref")
				}
				body, err := os.ReadFile(sf.payloadBinary)
				if err != nil {
					return failure(err)
				}
				if !task.IsBinaryPayload(body) {
					return usageErrorf("%s does not start with %q: see docs/INFERENCE.md, \"Binary bodies\"", sf.payloadBinary, task.BinaryPayloadPrefix+"<header length>")
				}
				ref, err := c.UploadPayload(cmd.Context(), body)
				if err != nil {
					return failure(fmt.Errorf("upload the binary payload: %w", err))
				}
				spec.PayloadRef = ref
			}
			if sf.upload && len(spec.Payload) > 0 {
				// Always through the bucket (Submit itself uploads a
				// payload over the client's inline limit).
				ref, err := c.UploadPayload(cmd.Context(), spec.Payload)
				if err != nil {
					return failure(fmt.Errorf("upload the payload: %w", err))
				}
				spec.Payload, spec.PayloadRef = nil, ref
			}
			t, err := c.Submit(cmd.Context(), spec)
			if err != nil {
				return failure(err)
			}
			if !sf.wait {
				if a.json() {
					return writeJSON(a.stdout, t)
				}
				_, err := fmt.Fprintln(a.stdout, t.ID)
				return err
			}
			return a.waitAndPrint(cmd.Context(), c, t.ID, sf.waitTimeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&sf.kind, "kind", "", "task kind: the executor or worker type (required)")
	f.StringVar(&sf.typ, "type", "", "stateless, stateful or pipeline (default: inferred from --state-key/--depends-on)")
	f.StringVar(&sf.payload, "payload", "", "payload: JSON, @FILE to read it from a file, or @- for stdin")
	f.StringVar(&sf.payloadFile, "payload-file", "", "read the payload (JSON) from this file; same as --payload @FILE")
	f.StringVar(&sf.payloadRef, "payload-ref", "", "payload_ref of an uploaded object (uploads/<id>) or a stored result (results/<task id>)")
	f.StringVar(&sf.payloadBinary, "payload-binary", "", "upload this file, an inference request in the OIP binary form (docs/INFERENCE.md), and submit with its payload_ref")
	f.BoolVar(&sf.upload, "upload", false, "upload the payload through a signed URL whatever its size")
	f.IntVar(&sf.priority, "priority", task.DefaultPriority, "priority 0-10, higher first")
	f.StringVar(&sf.idempotencyKey, "idempotency-key", "", "return the existing task when one has this key")
	f.StringSliceVar(&sf.dependsOn, "depends-on", nil, "ids of tasks that must complete first (comma-separated)")
	f.StringVar(&sf.stateKey, "state-key", "", "stateful key: one task per key runs at a time, in order")
	f.DurationVar(&sf.timeout, "timeout", 0, "per-attempt timeout, e.g. 30s (default: the server's)")
	f.IntVar(&sf.maxRetries, "max-retries", 0, "retries after the first attempt (default: the server's policy)")
	f.StringVar(&sf.runAt, "run-at", "", "start no earlier than this: RFC 3339 time or +DURATION from now (e.g. +10s)")
	f.StringArrayVar(&sf.labels, "label", nil, "required worker label KEY=VALUE (repeatable)")
	f.Float64Var(&sf.gpu, "gpu", 0, "GPUs the task uses, for cost attribution (gpu_seconds); a --label gpu=true alone counts as 1")
	f.StringArrayVar(&sf.headers, "header", nil, "header KEY=VALUE passed to the worker (repeatable)")
	f.BoolVar(&sf.wait, "wait", false, "wait for the task to finish and print it")
	f.DurationVar(&sf.waitTimeout, "wait-timeout", 0, "with --wait, give up after this long (default: no limit)")
	return cmd
}

// spec builds the task spec from the flags. now, readFile and stdin are
// parameters for tests.
func (sf *submitFlags) spec(cmd *cobra.Command, now time.Time, readFile func(string) ([]byte, error), stdin io.Reader) (task.Spec, error) {
	if sf.kind == "" {
		return task.Spec{}, usageErrorf("--kind is required")
	}
	s := task.Spec{
		Kind:           sf.kind,
		Type:           task.Type(sf.typ),
		IdempotencyKey: sf.idempotencyKey,
		StateKey:       sf.stateKey,
		DependsOn:      sf.dependsOn,
		Timeout:        task.Duration(sf.timeout),
	}
	var err error
	pv := sf.payload
	if sf.payloadFile != "" {
		if pv != "" {
			return task.Spec{}, usageErrorf("--payload and --payload-file exclude each other")
		}
		pv = "@" + sf.payloadFile
	}
	if s.Payload, err = parsePayload(pv, readFile, stdin); err != nil {
		return task.Spec{}, err
	}
	if sf.payloadRef != "" {
		if len(s.Payload) > 0 {
			return task.Spec{}, usageErrorf("--payload-ref excludes --payload and --payload-file")
		}
		s.PayloadRef = sf.payloadRef
	}
	if cmd.Flags().Changed("priority") {
		if sf.priority < task.MinPriority || sf.priority > task.MaxPriority {
			return task.Spec{}, usageErrorf("--priority must be between %d and %d", task.MinPriority, task.MaxPriority)
		}
		p := sf.priority
		s.Priority = &p
	}
	if cmd.Flags().Changed("max-retries") {
		if sf.maxRetries < 0 {
			return task.Spec{}, usageErrorf("--max-retries must not be negative")
		}
		n := sf.maxRetries
		s.Retry = &task.RetryPolicy{MaxRetries: &n}
	}
	if sf.runAt != "" {
		at, err := parseRunAt(sf.runAt, now)
		if err != nil {
			return task.Spec{}, err
		}
		s.RunAt = &at
	}
	labels, err := parseKeyValues("--label", sf.labels)
	if err != nil {
		return task.Spec{}, err
	}
	if labels != nil || sf.gpu != 0 {
		s.Constraints = &task.Constraints{Labels: labels, GPU: sf.gpu}
	}
	if s.Headers, err = parseKeyValues("--header", sf.headers); err != nil {
		return task.Spec{}, err
	}
	return s, nil
}

// parsePayload reads --payload: inline JSON, "@FILE", or "@-" for stdin. The
// result must be valid JSON; an empty flag means no payload.
func parsePayload(v string, readFile func(string) ([]byte, error), stdin io.Reader) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	b := []byte(v)
	src := "--payload"
	if name, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		switch name {
		case "":
			return nil, usageErrorf("--payload @ needs a file name (or @- for stdin)")
		case "-":
			src = "stdin"
			b, err = io.ReadAll(stdin)
		default:
			src = name
			b, err = readFile(name)
		}
		if err != nil {
			return nil, usageErrorf("--payload: %v", err)
		}
	}
	b = []byte(strings.TrimSpace(string(b)))
	if !json.Valid(b) {
		return nil, usageErrorf("--payload: %s is not valid JSON", src)
	}
	return json.RawMessage(b), nil
}

// parseRunAt reads --run-at: an RFC 3339 time, or "+DURATION" from now.
func parseRunAt(v string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(v, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur < 0 {
			return time.Time{}, usageErrorf("--run-at %q: want +DURATION such as +10s or +1h30m", v)
		}
		return now.Add(dur).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usageErrorf("--run-at %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or +DURATION", v)
	}
	return t, nil
}

// parseKeyValues reads repeated KEY=VALUE flags into a map (nil when none).
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usageErrorf("%s %q: want KEY=VALUE", flag, kv)
		}
		if _, dup := m[k]; dup {
			return nil, usageErrorf("%s: %q given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

func newGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a task",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			t, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			return a.printTask(t)
		},
	}
}

func newCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a task",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			t, err := c.Cancel(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			return a.printTask(t)
		},
	}
}

func newWaitCmd(a *app) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait for a task to finish and print it",
		Long:  "Wait for a task to finish and print it; the exit code is 1 when it failed or was cancelled, or when --timeout passed first.",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			return a.waitAndPrint(cmd.Context(), c, args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (default: no limit)")
	return cmd
}

// waitAndPrint waits for a task, prints it, and turns a failed or cancelled
// outcome into exit code 1.
func (a *app) waitAndPrint(ctx context.Context, c *client.Client, id task.ID, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	t, err := c.Wait(ctx, id)
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() == nil {
			return failure(err)
		}
		if t == nil {
			// The last poll did not come back in time: look once more.
			gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			t, _ = c.Get(gctx, id)
		}
		if t == nil {
			return failure(fmt.Errorf("timed out waiting for task %s", id))
		}
		return failure(fmt.Errorf("timed out waiting for task %s (still %s)", id, t.Status))
	}
	if err := a.printTask(t); err != nil {
		return err
	}
	switch t.Status {
	case task.Failed:
		msg := "failed"
		if t.Error != nil {
			msg += ": " + t.Error.Message
		}
		return failure(fmt.Errorf("task %s %s", t.ID, msg))
	case task.Cancelled:
		return failure(fmt.Errorf("task %s was cancelled", t.ID))
	}
	return nil
}

func newListCmd(a *app) *cobra.Command {
	var (
		status []string
		opts   client.ListOptions
		all    bool
		from   string
		to     string
		labels []string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's tasks, newest first",
		Long: `List the tenant's tasks, newest first, one page at a time (or all with --all).
Finished tasks that left the Raft state are listed from the archive where
one is configured.

With -o json, each task is printed as one line of JSON.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range status {
				st := task.Status(strings.TrimSpace(s))
				if !st.Valid() {
					return usageErrorf("--status %q: want one of %v", s, task.Statuses)
				}
				opts.Status = append(opts.Status, st)
			}
			if opts.Limit < 0 || opts.Limit > 1000 {
				return usageErrorf("--limit must be between 1 and 1000")
			}
			for flag, v := range map[string]string{"--finished-from": from, "--finished-to": to} {
				if v == "" {
					continue
				}
				at, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return usageErrorf("%s %q: want an RFC 3339 time such as 2026-12-01T00:00:00Z", flag, v)
				}
				if flag == "--finished-from" {
					opts.FinishedFrom = at
				} else {
					opts.FinishedTo = at
				}
			}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return usageErrorf("--label %q: want key=value", l)
				}
				if opts.Labels == nil {
					opts.Labels = map[string]string{}
				}
				opts.Labels[k] = v
			}
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			return a.list(cmd.Context(), c, opts, all)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&status, "status", nil, "only these statuses (comma-separated)")
	f.StringVar(&opts.Kind, "kind", "", "only this kind")
	f.StringVar(&from, "finished-from", "", "only tasks finished at or after this RFC 3339 time")
	f.StringVar(&to, "finished-to", "", "only tasks finished before this RFC 3339 time")
	f.StringSliceVar(&labels, "label", nil, "only tasks requiring this worker label, key=value (repeatable)")
	f.IntVar(&opts.Limit, "limit", 0, "page size, 1-1000 (default: the server's, 100)")
	f.StringVar(&opts.Cursor, "cursor", "", "start at this cursor (printed after a page)")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func (a *app) list(ctx context.Context, c *client.Client, opts client.ListOptions, all bool) error {
	table := newTaskTable(a.stdout)
	emit := func(t *task.Task) error {
		if a.json() {
			return writeJSONLine(a.stdout, t)
		}
		table.add(t)
		return nil
	}
	next := ""
	if all {
		for t, err := range c.ListAll(ctx, opts) {
			if err != nil {
				_ = table.flush()
				return failure(err)
			}
			if err := emit(t); err != nil {
				return err
			}
		}
	} else {
		p, err := c.List(ctx, opts)
		if err != nil {
			return failure(err)
		}
		for _, t := range p.Tasks {
			if err := emit(t); err != nil {
				return err
			}
		}
		next = p.NextCursor
	}
	if err := table.flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(a.stderr, "more tasks: --cursor %s (or --all)\n", next)
	}
	return nil
}
