package pyruntime

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// The frame protocol between the driver and the Python runtime process
// (ai/runtime/python/grey_runtime/protocol.py is its other half). One frame,
// in either direction:
//
//	uint32 big-endian  N    length of what follows (the payload)
//	uint32 big-endian  H    length of the header
//	H bytes                 header: a JSON object
//	N-4-H bytes             body: raw tensor bytes
//
// Tensors travel in the body, concatenated in the order of the header's
// "tensors" list, each entry {"name", "datatype", "shape"} fixing its length
// (elements × datatype size); the bytes are little-endian and row-major, as
// in ai.Tensor. Requests carry "id" (positive, unique while in flight) and
// "op" (info, load, unload, infer, shutdown, and cancel, which has no reply
// and drops the queued request "id" unless it started). Replies carry the
// request's "id" and "ok"; when ok is false, "error" is {"code",
// "message"}. The runtime sends one unsolicited frame, id 0 op "ready", once
// it is ready. The runtime reads ahead but runs requests one at a time in
// arrival order, so the oldest unanswered request is the one running.
const (
	// MaxFrame bounds a frame's payload (1 GiB): a length past it is a
	// broken stream.
	MaxFrame = 1 << 30
	// MaxHeader bounds a frame's JSON header (4 MiB).
	MaxHeader = 4 << 20
)

// tensorSpec is one body tensor's entry in a header.
type tensorSpec struct {
	Name     string      `json:"name"`
	Datatype ai.Datatype `json:"datatype"`
	Shape    []int64     `json:"shape"`
}

// request is a request header.
type request struct {
	ID        uint64       `json:"id"`
	Op        string       `json:"op"`
	Key       string       `json:"key,omitempty"`
	Framework ai.Framework `json:"framework,omitempty"`
	Path      string       `json:"path,omitempty"`
	Device    string       `json:"device,omitempty"`
	Tensors   []tensorSpec `json:"tensors,omitempty"`
	Outputs   []string     `json:"outputs,omitempty"`
}

// replyError is a reply's error.
type replyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// reply is a reply header, every op's fields together.
type reply struct {
	ID    uint64      `json:"id"`
	Op    string      `json:"op,omitempty"` // "ready" for the first frame
	OK    bool        `json:"ok"`
	Error *replyError `json:"error,omitempty"`
	// ready
	PID      int `json:"pid,omitempty"`
	Protocol int `json:"protocol,omitempty"`
	// info
	Name       string                  `json:"name,omitempty"`
	Version    string                  `json:"version,omitempty"`
	Python     string                  `json:"python,omitempty"`
	Frameworks map[ai.Framework]string `json:"frameworks,omitempty"`
	Devices    []string                `json:"devices,omitempty"`
	BLAS       *blasInfo               `json:"blas,omitempty"`
	// load
	Device string  `json:"device,omitempty"`
	TookMS float64 `json:"took_ms,omitempty"`
	// infer
	Tensors []tensorSpec `json:"tensors,omitempty"`
}

// blasInfo is the info reply's account of the BLAS library in the process.
type blasInfo struct {
	Name          string `json:"name"`
	Library       string `json:"library"`
	Config        string `json:"config,omitempty"`
	Threads       int    `json:"threads,omitempty"`
	TorchBLASInfo string `json:"torch_blas_info,omitempty"`
	TorchThreads  int    `json:"torch_threads,omitempty"`
}

// String is the one-line form of ai.RuntimeInfo.BLAS.
func (b *blasInfo) String() string {
	if b == nil || b.Name == "" {
		return ""
	}
	s := b.Name
	if b.Config != "" {
		s += ": " + b.Config
	}
	if b.Threads > 0 {
		s += fmt.Sprintf(" threads=%d", b.Threads)
	}
	if b.Library != "" {
		s += " (" + b.Library + ")"
	}
	return s
}

// frame is one decoded frame.
type frame struct {
	header []byte
	body   []byte
}

// writeFrame writes a frame of header (marshalled) and the tensors' bytes.
func writeFrame(w io.Writer, header any, tensors []ai.Tensor) error {
	hb, err := json.Marshal(header)
	if err != nil {
		return err
	}
	n := 4 + len(hb)
	for i := range tensors {
		n += len(tensors[i].Data)
	}
	if n > MaxFrame {
		return greyerr.New(greyerr.TooLarge, "a frame of %d bytes is past the runtime's limit of %d", n, MaxFrame)
	}
	var pre [8]byte
	binary.BigEndian.PutUint32(pre[0:4], uint32(n))
	binary.BigEndian.PutUint32(pre[4:8], uint32(len(hb)))
	bufs := make([][]byte, 0, 2+len(tensors))
	bufs = append(bufs, pre[:], hb)
	for i := range tensors {
		bufs = append(bufs, tensors[i].Data)
	}
	nb := net.Buffers(bufs)
	_, err = nb.WriteTo(w)
	return err
}

// readFrame reads one frame. It returns io.EOF only at a clean end between
// frames; every malformed length is an error.
func readFrame(r io.Reader) (frame, error) {
	var pre [4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return frame{}, fmt.Errorf("stream ended inside a frame length")
		}
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(pre[:])
	if n < 4 || n > MaxFrame {
		return frame{}, fmt.Errorf("frame length %d out of range [4, %d]", n, MaxFrame)
	}
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return frame{}, fmt.Errorf("stream ended inside a frame: %w", noEOF(err))
	}
	h := binary.BigEndian.Uint32(pre[:])
	if h > n-4 || h > MaxHeader {
		return frame{}, fmt.Errorf("header length %d out of range (frame %d, limit %d)", h, n, MaxHeader)
	}
	// Read the header first, then the body, growing with what arrives so
	// that a lying length cannot make us allocate a gigabyte up front.
	hb := make([]byte, h)
	if _, err := io.ReadFull(r, hb); err != nil {
		return frame{}, fmt.Errorf("stream ended inside a header: %w", noEOF(err))
	}
	body, err := readN(r, int64(n-4-h))
	if err != nil {
		return frame{}, fmt.Errorf("stream ended inside a body: %w", noEOF(err))
	}
	return frame{header: hb, body: body}, nil
}

// readN reads exactly n bytes, allocating in steps as they arrive.
func readN(r io.Reader, n int64) ([]byte, error) {
	const step = 16 << 20
	if n <= step {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, step)
	for int64(len(b)) < n {
		want := min(n-int64(len(b)), step)
		b = append(b, make([]byte, want)...)
		if _, err := io.ReadFull(r, b[int64(len(b))-want:]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decodeReply parses a frame as a reply and its body's tensors (whose
// Data alias the body).
func decodeReply(f frame) (reply, []ai.Tensor, error) {
	var rp reply
	if err := json.Unmarshal(f.header, &rp); err != nil {
		return reply{}, nil, fmt.Errorf("reply header: %w", err)
	}
	if !rp.OK && rp.Error == nil && rp.Op != "ready" {
		return reply{}, nil, fmt.Errorf("reply %d is neither ok nor an error", rp.ID)
	}
	ts, err := splitBody(rp.Tensors, f.body)
	if err != nil {
		return reply{}, nil, fmt.Errorf("reply %d: %w", rp.ID, err)
	}
	return rp, ts, nil
}

// splitBody cuts body into the tensors specs describe, checking each
// against ai.Tensor's rules and that the body holds exactly them.
func splitBody(specs []tensorSpec, body []byte) ([]ai.Tensor, error) {
	out := make([]ai.Tensor, 0, len(specs))
	var off int64
	for i, s := range specs {
		sz := int64(s.Datatype.Size())
		if sz == 0 {
			return nil, fmt.Errorf("tensor %d: datatype %q is not one Grey carries", i, s.Datatype)
		}
		n, err := ai.Elements(s.Shape, fmt.Sprintf("tensors[%d].shape", i))
		if err != nil {
			return nil, err
		}
		if s.Shape == nil {
			return nil, fmt.Errorf("tensor %d has no shape", i)
		}
		if n*sz > int64(len(body))-off {
			return nil, fmt.Errorf("tensor %d (%s) needs %d bytes, the body has %d left", i, s.Name, n*sz, int64(len(body))-off)
		}
		t := ai.Tensor{Name: s.Name, Datatype: s.Datatype, Shape: s.Shape, Data: body[off : off+n*sz : off+n*sz]}
		if err := t.Validate(fmt.Sprintf("tensors[%d]", i)); err != nil {
			return nil, err
		}
		out = append(out, t)
		off += n * sz
	}
	if off != int64(len(body)) {
		return nil, fmt.Errorf("body has %d bytes past its tensors", int64(len(body))-off)
	}
	return out, nil
}

// specsOf describes tensors for a request header.
func specsOf(ts []ai.Tensor) []tensorSpec {
	out := make([]tensorSpec, len(ts))
	for i := range ts {
		out[i] = tensorSpec{Name: ts[i].Name, Datatype: ts[i].Datatype, Shape: ts[i].Shape}
	}
	return out
}

// errorOf maps a reply's error to the driver contract's codes.
func errorOf(e *replyError) error {
	switch e.Code {
	case "invalid_argument":
		return greyerr.New(greyerr.InvalidArgument, "%s", e.Message)
	case "failed_precondition":
		return greyerr.New(greyerr.FailedPrecondition, "%s", e.Message)
	case "not_found":
		return greyerr.New(greyerr.NotFound, "%s", e.Message)
	case "model_error":
		return fmt.Errorf("%w: %s", ai.ErrModel, e.Message)
	case "canceled":
		return greyerr.New(greyerr.Canceled, "%s", e.Message)
	}
	return greyerr.New(greyerr.Internal, "python runtime: %s: %s", e.Code, e.Message)
}
