package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	release, err := s.eng.SubmitSlot(r.Context(), ten)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
	var spec task.Spec
	if err := s.decode(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.eng.Submit(r.Context(), ten, []task.Spec{spec}, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if !res.Created[0] {
		status = http.StatusOK
	}
	writeJSON(w, status, res.Tasks[0])
}

// batchRequest is apitypes.BatchRequest with the items held raw, so that
// each is decoded on its own and a decoding error can name the item
// ("tasks[3].priority"): encoding/json's own errors name the path without
// the index ("tasks.priority").
type batchRequest struct {
	Tasks []json.RawMessage `json:"tasks"`
}

// strictType checks the items as the specs they decode into.
func (*batchRequest) strictType() reflect.Type {
	return reflect.TypeFor[struct {
		Tasks []task.Spec `json:"tasks"`
	}]()
}

func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	release, err := s.eng.SubmitSlot(r.Context(), ten)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
	var req batchRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	specs := make([]task.Spec, len(req.Tasks))
	for i, raw := range req.Tasks {
		if err := decodeItem(raw, &specs[i], "tasks", i); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	res, err := s.eng.Submit(r.Context(), ten, specs, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, apitypes.BatchResponse{Tasks: res.Tasks})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	sts, err := parseStatuses(q.Get("status"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := kindParam(q); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, greyerr.Invalid("limit", "must be an integer between 1 and 1000"))
			return
		}
		limit = n
	}
	opts := engine.ListOptions{Limit: limit, Cursor: q.Get("cursor")}
	opts.Statuses, opts.Kind = sts, q.Get("kind")
	for _, key := range []string{"finished_from", "finished_to"} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.writeError(w, r, greyerr.Invalid(key, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z, got %q", v))
			return
		}
		if key == "finished_from" {
			opts.FinishedFrom = at
		} else {
			opts.FinishedTo = at
		}
	}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			s.writeError(w, r, greyerr.Invalid("label", "must be key=value, got %q", l))
			return
		}
		if opts.Labels == nil {
			opts.Labels = map[string]string{}
		}
		opts.Labels[k] = v
	}
	ts, next, err := s.eng.List(r.Context(), ten, opts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []*task.Task{}
	}
	writeJSON(w, http.StatusOK, apitypes.TaskPage{Tasks: ts, NextCursor: next})
}

// byID serves a tenant-scoped route on one task: do gets the caller's
// tenant and the {id} of the path; its result is the 200 body.
func byID[T any](s *Server, do func(ctx context.Context, tenant, id string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ten, err := tenantOf(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out, err := do(r.Context(), ten, r.PathValue("id"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) wait(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	timeout := 30 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > serverTimeout {
			s.writeError(w, r, greyerr.Invalid("timeout", "must be a duration between 0s and %s, got %q", serverTimeout, v))
			return
		}
		timeout = d
	}
	t, err := s.eng.Wait(r.Context(), ten, r.PathValue("id"), timeout)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// watch streams the tenant's task changes as server-sent events.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sts, err := parseStatuses(r.URL.Query().Get("status"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	kind, err := kindParam(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, greyerr.New(greyerr.Unimplemented, "streaming is not supported by this connection"))
		return
	}
	wt, err := s.eng.Watch(ten, engine.WatchOptions{Statuses: sts, Kind: kind})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer s.eng.Unwatch(wt)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": watching\n\n"))
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	ew := newEventWriter()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
			fl.Flush()
		case t, ok := <-wt.C():
			if !ok {
				if wt.Overflowed() {
					_, _ = w.Write([]byte("event: error\ndata: {\"code\":\"resource_exhausted\",\"message\":\"watcher fell behind; reconnect\"}\n\n"))
					fl.Flush()
				}
				return
			}
			ew.buf.Reset()
			for {
				if err := ew.add(t); err != nil {
					s.logger.ErrorContext(r.Context(), "watch: event not sent, stream ended", "err", err)
					_, _ = w.Write(append(ew.buf.Bytes(), "event: error\ndata: {\"code\":\"internal\",\"message\":\"could not encode a task event; reconnect\"}\n\n"...))
					fl.Flush()
					return
				}
				select {
				case t, ok = <-wt.C():
					if ok {
						continue
					}
				default:
				}
				break
			}
			if _, err := w.Write(ew.buf.Bytes()); err != nil {
				return
			}
			fl.Flush()
			if !ok {
				return
			}
		}
	}
}

// eventWriter encodes a watch's task events. One lives as long as its
// stream and reuses its buffer and its copy of the task, so an event costs
// no allocation of its own: a watch sends one per task transition.
type eventWriter struct {
	buf  bytes.Buffer
	enc  *gojson.Encoder
	copy task.Task
}

func newEventWriter() *eventWriter {
	ew := &eventWriter{}
	ew.buf.Grow(4096)
	// goccy/go-json writes the same JSON as encoding/json at about half the
	// CPU.
	ew.enc = gojson.NewEncoder(&ew.buf)
	return ew
}

// add appends t's event, without its payload and result. On an error
// (a task is plain data, so only a bug) nothing of the event is left in
// the buffer.
func (ew *eventWriter) add(t *task.Task) error {
	n := ew.buf.Len()
	ew.copy = *t
	ew.copy.Payload, ew.copy.Result = nil, nil
	ew.buf.WriteString("event: task\ndata: ")
	// Encode ends the value with a newline; the blank line ends the event.
	err := ew.enc.Encode(&ew.copy)
	ew.copy = task.Task{} // holds no task's memory between events
	if err != nil {
		ew.buf.Truncate(n)
		return greyerr.Wrap(greyerr.Internal, err, "watch: encode task %s", t.ID)
	}
	ew.buf.WriteByte('\n')
	return nil
}
