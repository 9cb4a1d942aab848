package client

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/task"
)

// Submit submits one task and returns it as created. When spec carries an
// IdempotencyKey that matches an existing task of the tenant, the existing
// task is returned instead and nothing is created. A payload over the
// client's inline limit (DefaultInlineLimit, WithInlineLimit) is uploaded
// through a signed URL first and the task submitted with its payload_ref.
func (c *Client) Submit(ctx context.Context, spec task.Spec) (*task.Task, error) {
	if err := c.largePayload(ctx, &spec); err != nil {
		return nil, err
	}
	var t task.Task
	if err := c.do(ctx, http.MethodPost, "/api/v1/tasks", nil, &spec, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// SubmitBatch submits 1 to 1000 tasks at once and returns them in the order
// of specs. It is all or nothing: when one spec is invalid nothing is created
// and the InvalidArgument error's Field names it as "tasks[i].<field>".
func (c *Client) SubmitBatch(ctx context.Context, specs []task.Spec) ([]*task.Task, error) {
	for i := range specs {
		if specs[i].PayloadRef == "" && c.inlineWanted(len(specs[i].Payload)) {
			specs = append([]task.Spec(nil), specs...) // leave the caller's slice alone
			for j := i; j < len(specs); j++ {
				if err := c.largePayload(ctx, &specs[j]); err != nil {
					return nil, fmt.Errorf("tasks[%d]: %w", j, err)
				}
			}
			break
		}
	}
	var resp apitypes.BatchResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/tasks/batch", nil, &apitypes.BatchRequest{Tasks: specs}, &resp); err != nil {
		return nil, err
	}
	return resp.Tasks, nil
}

// Get returns a task of the tenant. An unknown id, or another tenant's, is a
// NotFound error. A result stored by reference (ResultRef) is fetched into
// Result; when that fails (the object changed) the task comes back with
// the error.
func (c *Client) Get(ctx context.Context, id task.ID) (*task.Task, error) {
	path, err := taskPath(id, "")
	if err != nil {
		return nil, err
	}
	var t task.Task
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &t); err != nil {
		return nil, err
	}
	if err := c.fillResult(ctx, &t); err != nil {
		return &t, err
	}
	return &t, nil
}

// ListOptions filters and pages List.
type ListOptions struct {
	// Status keeps only tasks in one of these statuses (all when empty).
	Status []task.Status
	// Kind keeps only tasks of this kind (all when empty).
	Kind string
	// FinishedFrom keeps only tasks finished at or after it (zero: no bound).
	FinishedFrom time.Time
	// FinishedTo keeps only tasks finished before it (zero: no bound).
	FinishedTo time.Time
	// Labels keeps only tasks requiring all these worker labels.
	Labels map[string]string
	// Limit is the page size, 1–1000 (0 = the server's default, 100).
	Limit int
	// Cursor is the NextCursor of the previous page ("" = the first page);
	// it is valid only with the same filters.
	Cursor string
}

// query renders the options as query parameters.
func (o ListOptions) query() url.Values {
	q := statusQuery(o.Status, o.Kind)
	if !o.FinishedFrom.IsZero() {
		q.Set("finished_from", o.FinishedFrom.UTC().Format(time.RFC3339Nano))
	}
	if !o.FinishedTo.IsZero() {
		q.Set("finished_to", o.FinishedTo.UTC().Format(time.RFC3339Nano))
	}
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		q.Add("label", k+"="+o.Labels[k])
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// statusQuery renders the status and kind filters shared by list and watch.
func statusQuery(status []task.Status, kind string) url.Values {
	q := url.Values{}
	if len(status) > 0 {
		s := make([]string, len(status))
		for i, st := range status {
			s[i] = string(st)
		}
		q.Set("status", strings.Join(s, ","))
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	return q
}

// TaskPage is one page of List: the tasks, newest first, and the cursor
// of the next page (empty on the last page).
type TaskPage = apitypes.TaskPage

// List returns one page of the tenant's tasks, newest first.
func (c *Client) List(ctx context.Context, opts ListOptions) (*TaskPage, error) {
	var p TaskPage
	if err := c.do(ctx, http.MethodGet, "/api/v1/tasks", opts.query(), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListAll iterates over all of the tenant's tasks matching opts, newest
// first, fetching pages of opts.Limit from opts.Cursor on as needed. An error
// ends the iteration after it is yielded.
func (c *Client) ListAll(ctx context.Context, opts ListOptions) iter.Seq2[*task.Task, error] {
	return func(yield func(*task.Task, error) bool) {
		for {
			p, err := c.List(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, t := range p.Tasks {
				if !yield(t, nil) {
					return
				}
			}
			if p.NextCursor == "" || len(p.Tasks) == 0 {
				return
			}
			opts.Cursor = p.NextCursor
		}
	}
}

// Cancel cancels a task and returns it, now cancelled. A task that already
// finished (completed, failed or cancelled) is a FailedPrecondition error.
func (c *Client) Cancel(ctx context.Context, id task.ID) (*task.Task, error) {
	path, err := taskPath(id, "")
	if err != nil {
		return nil, err
	}
	var t task.Task
	if err := c.do(ctx, http.MethodDelete, path, nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Wait blocks until the task is terminal (completed, failed or cancelled) and
// returns it; check its Status and Error. It long-polls the server's wait
// endpoint and rides out transient errors (unavailable servers, leader
// changes, rate limits) with backoff. When ctx ends first, Wait returns ctx's
// error together with the task as last seen (nil if it was never seen).
func (c *Client) Wait(ctx context.Context, id task.ID) (*task.Task, error) {
	path, err := taskPath(id, "/wait")
	if err != nil {
		return nil, err
	}
	var (
		last  *task.Task
		retry backoff
		early backoff
	)
	for {
		poll := c.waitPoll
		if dl, ok := ctx.Deadline(); ok {
			// End the last poll a little before ctx does, so that its answer
			// (the task as last seen) still arrives.
			rem := time.Until(dl)
			poll = min(poll, (rem - min(rem/5, time.Second)).Round(time.Millisecond))
		}
		if poll <= 0 {
			<-ctx.Done()
			return last, ctx.Err()
		}
		began := time.Now()
		var t task.Task
		err := c.do(ctx, http.MethodGet, path, url.Values{"timeout": {poll.String()}}, nil, &t)
		switch {
		case err == nil:
			last = &t
			if t.Status.Terminal() {
				if err := c.fillResult(ctx, &t); err != nil {
					return &t, err
				}
				return &t, nil
			}
			retry.reset()
			// The server answers a non-terminal task only when the poll
			// timed out; if it answered much sooner, do not spin.
			if time.Since(began) < poll/10 {
				err = sleep(ctx, early.delay(nil))
			} else {
				early.reset()
			}
		case ctx.Err() != nil:
			return last, ctx.Err()
		case transient(err):
			err = sleep(ctx, retry.delay(err))
		default:
			return last, err
		}
		if err != nil {
			return last, err
		}
	}
}
