package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// maxEventBytes bounds one line of the event stream.
const maxEventBytes = 8 << 20

// WatchOptions filters Watch.
type WatchOptions struct {
	// Status keeps only changes into one of these statuses (all when empty).
	Status []task.Status
	// Kind keeps only tasks of this kind (all when empty).
	Kind string
	// OnConnect, when set, is called each time the stream is established (and
	// re-established after a reconnect), before the first event it carries.
	// Changes from that moment on are delivered; use it to start work whose
	// changes must not be missed.
	OnConnect func()
	// OnDisconnect, when set, is called with the cause each time the stream
	// broke (or could not be opened) and Watch is about to reconnect. Changes
	// between OnDisconnect and the next OnConnect are lost.
	OnDisconnect func(err error)
}

// Watch streams the tenant's task changes from now on, calling fn for each in
// order. The tasks carry no payload and no result (use Get for those).
//
// Watch returns when ctx ends (with ctx's error), when fn returns an error
// (with that error), or on an error that a retry cannot fix (e.g.
// InvalidArgument for a bad filter, Unauthenticated). When the stream breaks,
// stays silent for a minute (the server pings every 15 seconds), or the
// server ends it with an "error" event (e.g. resource_exhausted when the
// client fell behind), Watch reconnects with backoff, possibly to another
// server; changes that happened while it was disconnected are not replayed
// (see WatchOptions.OnDisconnect).
func (c *Client) Watch(ctx context.Context, opts WatchOptions, fn func(*task.Task) error) error {
	r := &request{
		method: http.MethodGet,
		path:   "/api/v1/tasks/watch",
		query:  statusQuery(opts.Status, opts.Kind),
		accept: "text/event-stream",
	}
	var retry backoff
	for {
		err := c.watchOnce(ctx, r, opts.OnConnect, fn, &retry)
		var fe fnError
		switch {
		case errors.As(err, &fe):
			return fe.err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !transient(err):
			return err
		}
		if opts.OnDisconnect != nil {
			opts.OnDisconnect(err)
		}
		if err := sleep(ctx, retry.delay(err)); err != nil {
			return err
		}
	}
}

// fnError marks an error returned by the caller's function.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// watchOnce opens one stream and reads it until it ends. It returns an
// Unavailable error when the stream broke, fnError when fn failed.
func (c *Client) watchOnce(ctx context.Context, r *request, onConnect func(), fn func(*task.Task) error, retry *backoff) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	retry.reset()
	if onConnect != nil {
		onConnect()
	}

	// A silent stream means a dead connection: cancel it so the read fails.
	idle := time.AfterFunc(c.watchIdle, cancel)
	defer idle.Stop()

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var (
		event string
		data  bytes.Buffer
	)
	for sc.Scan() {
		idle.Reset(c.watchIdle)
		line := sc.Bytes()
		if len(line) == 0 {
			switch {
			case data.Len() == 0:
			case event == "task":
				var t task.Task
				if err := gojson.Unmarshal(data.Bytes(), &t); err != nil {
					return greyerr.Wrap(greyerr.Internal, err, "watch: decode task event")
				}
				if err := fn(&t); err != nil {
					return fnError{err}
				}
			case event == "error":
				return streamError(data.Bytes())
			}
			event = ""
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue // comment, e.g. ": ping"
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(value)
		}
	}
	err = sc.Err()
	if err == nil {
		err = errors.New("server closed the stream")
	}
	return &greyerr.Error{Code: greyerr.Unavailable, Message: "watch: stream ended", Err: err}
}

// streamError decodes the data of an "error" event, with which the server
// ends a stream.
func streamError(data []byte) *greyerr.Error {
	e := &greyerr.Error{}
	if err := json.Unmarshal(data, e); err != nil || e.Code == "" {
		e = &greyerr.Error{Code: greyerr.Unavailable, Message: string(data)}
	}
	e.Message = "watch: server ended the stream: " + e.Message
	return e
}
