package pyruntime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/runtime/python"
	"github.com/grey-distributed/grey/greyerr"
)

// stderrKeep is how many of the process's last stderr lines an exit
// error quotes.
const stderrKeep = 12

// call is one request in flight.
type call struct {
	req       request
	tensors   []ai.Tensor
	reply     chan result // buffered 1
	abandoned atomic.Bool
}

type result struct {
	rp  reply
	ts  []ai.Tensor
	err error
}

// process is one running runtime process.
type process struct {
	d       *Driver
	cmd     *exec.Cmd
	pid     int
	started time.Time
	sendq   chan *call
	done    chan struct{} // closed when the process is gone
	killed  atomic.Bool   // kill was called: the process is going

	mu         sync.Mutex
	pending    map[uint64]*call
	order      []uint64 // written and unanswered, oldest first: order[0] runs
	loaded     map[string]bool
	info       *ai.RuntimeInfo
	err        error // why it is gone
	killReason string
	stderr     []string
}

// startProcess starts a runtime process and waits for its ready frame.
func startProcess(ctx context.Context, d *Driver) (*process, error) {
	cmd := exec.Command(d.cfg.Python, "-m", python.PackageName, "--threads", strconv.Itoa(d.cfg.Threads))
	env := os.Environ()
	pp := d.dir
	if old := os.Getenv("PYTHONPATH"); old != "" {
		pp += string(os.PathListSeparator) + old
	}
	env = append(env, "PYTHONPATH="+pp, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Env = env
	setDeathSignal(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "python runtime: stdin pipe")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "python runtime: stdout pipe")
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "python runtime: stderr pipe")
	}
	if err := cmd.Start(); err != nil {
		return nil, greyerr.Wrap(greyerr.Unavailable, err, "python runtime: starting %s", d.cfg.Python)
	}
	p := &process{d: d, cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), sendq: make(chan *call, 256),
		done: make(chan struct{}), pending: map[uint64]*call{}, loaded: map[string]bool{}}
	d.log.Info("python runtime started", "pid", p.pid)
	ready := make(chan error, 1)
	stderrDone := make(chan struct{})
	go p.readStderr(stderr, stderrDone)
	go p.readLoop(bufio.NewReaderSize(stdout, 1<<16), ready, stderrDone)
	go p.writeLoop(stdin)

	sctx, cancel := context.WithTimeout(ctx, d.cfg.StartTimeout)
	defer cancel()
	select {
	case err := <-ready:
		if err != nil {
			p.kill("it did not start")
			<-p.done
			return nil, p.goneError()
		}
		return p, nil
	case <-p.done:
		return nil, p.goneError()
	case <-sctx.Done():
		p.kill("it was not ready within the start timeout")
		<-p.done
		if ctx.Err() != nil {
			return nil, ctxError(ctx, "starting the python runtime")
		}
		return nil, p.goneError()
	}
}

func (p *process) readStderr(r io.Reader, done chan<- struct{}) {
	defer close(done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.d.log.Info("python runtime: "+line, "pid", p.pid)
		p.mu.Lock()
		p.stderr = append(p.stderr, line)
		if len(p.stderr) > stderrKeep {
			p.stderr = p.stderr[len(p.stderr)-stderrKeep:]
		}
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// readLoop reads replies until the stream ends, then reaps the process.
func (p *process) readLoop(r io.Reader, ready chan<- error, stderrDone <-chan struct{}) {
	first := true
	var why error
	for {
		f, err := readFrame(r)
		if err != nil {
			if err != io.EOF {
				why = fmt.Errorf("reading its replies: %w", err)
			}
			break
		}
		rp, ts, err := decodeReply(f)
		if err != nil {
			why = fmt.Errorf("a malformed reply: %w", err)
			break
		}
		if first {
			first = false
			if rp.Op != "ready" || rp.Protocol != 1 {
				ready <- fmt.Errorf("its first frame is not a protocol 1 ready frame")
				why = fmt.Errorf("its first frame is not a protocol 1 ready frame (an old or foreign runtime?)")
				break
			}
			ready <- nil
			continue
		}
		p.mu.Lock()
		c := p.pending[rp.ID]
		delete(p.pending, rp.ID)
		for i, id := range p.order {
			if id == rp.ID {
				p.order = append(p.order[:i], p.order[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		if c != nil {
			c.reply <- result{rp: rp, ts: ts}
		}
	}
	if why != nil {
		p.kill(why.Error())
	} else {
		_ = p.cmd.Process.Kill() // it closed stdout: make sure it is gone
	}
	select {
	case <-stderrDone:
	case <-time.After(5 * time.Second):
	}
	werr := p.cmd.Wait()
	p.mu.Lock()
	msg := "the python runtime process (pid " + strconv.Itoa(p.pid) + ") exited"
	if p.killReason != "" {
		msg = "the python runtime process (pid " + strconv.Itoa(p.pid) + ") was killed: " + p.killReason
	} else if werr != nil {
		msg += ": " + werr.Error()
	}
	if len(p.stderr) > 0 {
		msg += "; its last stderr lines: " + strings.Join(p.stderr, " | ")
	}
	p.err = greyerr.New(greyerr.Unavailable, "%s", msg)
	pending := p.pending
	p.pending = nil
	p.order = nil
	p.mu.Unlock()
	close(p.done)
	for _, c := range pending {
		c.reply <- result{err: p.err}
	}
	p.d.log.Warn("python runtime gone", "pid", p.pid, "why", msg)
	p.d.exited(p, time.Since(p.started))
}

// writeLoop writes queued requests in order.
func (p *process) writeLoop(stdin io.WriteCloser) {
	defer stdin.Close()
	w := bufio.NewWriterSize(stdin, 1<<16)
	for {
		var c *call
		select {
		case c = <-p.sendq:
		case <-p.done:
			return
		}
		if c.abandoned.Load() {
			continue
		}
		if c.req.Op != "cancel" {
			p.mu.Lock()
			if p.pending == nil { // gone
				p.mu.Unlock()
				c.reply <- result{err: p.goneError()}
				continue
			}
			p.pending[c.req.ID] = c
			p.order = append(p.order, c.req.ID)
			p.mu.Unlock()
		}
		err := writeFrame(w, c.req, c.tensors)
		if err == nil && len(p.sendq) == 0 {
			err = w.Flush()
		}
		if err != nil {
			p.kill("writing a request: " + err.Error())
			return
		}
	}
}

// do sends a request and waits for its reply (or the process's end, or
// ctx's).
func (p *process) do(ctx context.Context, req request, tensors []ai.Tensor) (reply, []ai.Tensor, error) {
	var size int
	for i := range tensors {
		size += len(tensors[i].Data)
	}
	if size > MaxFrame-MaxHeader {
		// Refused here: a frame the writer could not send would cost the
		// process (and every call in flight) its stream.
		return reply{}, nil, greyerr.New(greyerr.TooLarge, "the inputs hold %d bytes, past the python runtime's frame limit of %d", size, MaxFrame-MaxHeader)
	}
	req.ID = p.d.ids.Add(1)
	c := &call{req: req, tensors: tensors, reply: make(chan result, 1)}
	select {
	case p.sendq <- c:
	case <-p.done:
		return reply{}, nil, p.goneError()
	case <-ctx.Done():
		return reply{}, nil, ctxError(ctx, req.Op+" waited to be sent")
	}
	select {
	case r := <-c.reply:
		return p.finish(r)
	case <-p.done:
		select {
		case r := <-c.reply:
			return p.finish(r)
		default:
			return reply{}, nil, p.goneError()
		}
	case <-ctx.Done():
		p.giveUp(c)
		return reply{}, nil, ctxError(ctx, req.Op+" did not finish in time")
	}
}

func (p *process) finish(r result) (reply, []ai.Tensor, error) {
	if r.err != nil {
		return reply{}, nil, r.err
	}
	if !r.rp.OK {
		return reply{}, nil, errorOf(r.rp.Error)
	}
	return r.rp, r.ts, nil
}

// giveUp abandons c. When the process is running c (or another abandoned
// call) it is killed: Python cannot cancel a running thread. Else a cancel
// frame drops c from the process's queue.
func (p *process) giveUp(c *call) {
	c.abandoned.Store(true)
	p.mu.Lock()
	_, written := p.pending[c.req.ID]
	running := false
	if len(p.order) > 0 {
		head := p.pending[p.order[0]]
		running = head == c || (head != nil && head.abandoned.Load())
	}
	p.mu.Unlock()
	if running {
		p.kill(fmt.Sprintf("%s (request %d) ran past its caller's deadline; a Python thread cannot be cancelled", c.req.Op, c.req.ID))
		return
	}
	if written {
		select {
		case p.sendq <- &call{req: request{ID: c.req.ID, Op: "cancel"}, reply: make(chan result, 1)}:
		default: // the queue is full: the request will run, its reply be dropped
		}
	}
}

// kill ends the process with SIGKILL; the reader then fails what is in
// flight.
func (p *process) kill(reason string) {
	p.killed.Store(true)
	p.mu.Lock()
	if p.killReason == "" {
		p.killReason = reason
	}
	p.mu.Unlock()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.d.log.Warn("python runtime: kill failed", "pid", p.pid, "err", err)
	}
}

// shutdown asks the process to stop, and kills it after grace.
func (p *process) shutdown(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_, _, _ = p.do(ctx, request{Op: "shutdown"}, nil)
	select {
	case <-p.done:
	case <-ctx.Done():
		p.kill("it did not shut down in time")
		<-p.done
	}
}

func (p *process) isDead() bool {
	if p.killed.Load() {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) goneError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	return greyerr.New(greyerr.Unavailable, "the python runtime process (pid %d) is gone", p.pid)
}

func (p *process) hasLoaded(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loaded[key]
}

func (p *process) setLoaded(key string, v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v {
		p.loaded[key] = true
	} else {
		delete(p.loaded, key)
	}
}

func (p *process) cachedInfo() (ai.RuntimeInfo, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.info == nil {
		return ai.RuntimeInfo{}, false
	}
	return *p.info, true
}

func (p *process) setInfo(i ai.RuntimeInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.info = &i
}
