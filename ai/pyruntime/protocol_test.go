package pyruntime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

func frameBytes(t testing.TB, header any, ts []ai.Tensor) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeFrame(&b, header, ts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	big := ai.Tensor{Name: "big", Datatype: ai.FP32, Shape: []int64{5 << 20}, Data: make([]byte, 20<<20)}
	for i := range big.Data {
		big.Data[i] = byte(i * 7)
	}
	small := ai.Tensor{Name: "ids", Datatype: ai.Int64, Shape: []int64{2, 1}, Data: []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}}
	empty := ai.Tensor{Name: "none", Datatype: ai.Bool, Shape: []int64{0, 3}, Data: []byte{}}
	ts := []ai.Tensor{small, empty, big}
	rp := reply{ID: 9, OK: true, Tensors: specsOf(ts)}
	raw := frameBytes(t, rp, ts)
	r := bytes.NewReader(raw)
	f, err := readFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	got, out, err := decodeReply(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 9 || len(out) != 3 {
		t.Fatalf("reply %+v with %d tensors", got, len(out))
	}
	for i := range ts {
		if out[i].Name != ts[i].Name || out[i].Datatype != ts[i].Datatype || !slices.Equal(out[i].Shape, ts[i].Shape) || !bytes.Equal(out[i].Data, ts[i].Data) {
			t.Errorf("tensor %d differs", i)
		}
	}
	if _, err := readFrame(r); err != io.EOF {
		t.Errorf("after the last frame: got %v, want io.EOF", err)
	}
	// The layout is the documented one.
	if n := binary.BigEndian.Uint32(raw); int(n) != len(raw)-4 {
		t.Errorf("length prefix %d, frame %d", n, len(raw)-4)
	}
	h := binary.BigEndian.Uint32(raw[4:])
	if !bytes.HasPrefix(raw[8:8+h], []byte("{")) || !bytes.HasSuffix(raw[8:8+h], []byte("}")) {
		t.Errorf("header is not a JSON object: %q", raw[8:8+h])
	}
}

func TestBadFrames(t *testing.T) {
	good := frameBytes(t, reply{ID: 1, OK: true, Tensors: []tensorSpec{{Name: "x", Datatype: ai.FP32, Shape: []int64{1, 2}}}},
		[]ai.Tensor{{Name: "x", Datatype: ai.FP32, Shape: []int64{1, 2}, Data: make([]byte, 8)}})
	mk := func(n, h uint32, rest []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		b = binary.BigEndian.AppendUint32(b, h)
		return append(b, rest...)
	}
	reads := map[string][]byte{
		"short length":     {0, 0},
		"length below 4":   {0, 0, 0, 3, 0, 0, 0},
		"length too big":   binary.BigEndian.AppendUint32(nil, MaxFrame+1),
		"truncated":        good[:len(good)-1],
		"header past":      mk(8, 5, []byte("{}{}")),
		"header too large": mk(MaxHeader+10, MaxHeader+1, nil),
	}
	for name, b := range reads {
		if _, err := readFrame(bytes.NewReader(b)); err == nil || err == io.EOF {
			t.Errorf("%s: got %v, want an error", name, err)
		}
	}
	// hf is a frame of the header text h and the body bytes.
	hf := func(h string, body ...byte) []byte {
		return mk(4+uint32(len(h)+len(body)), uint32(len(h)), append([]byte(h), body...))
	}
	decodes := map[string][]byte{
		"not json":       hf("nop"),
		"neither":        hf(`{"id":1}`),
		"body too short": hf(`{"id":1,"ok":true,"tensors":[{"name":"x","datatype":"FP32","shape":[2]}]}`, 0, 0, 0, 0),
		"body too long":  hf(`{"ok":true}`, 'x'),
		"bad datatype":   hf(`{"ok":true,"tensors":[{"name":"x","datatype":"FP16","shape":[0]}]}`),
		"negative dim":   hf(`{"ok":true,"tensors":[{"name":"x","datatype":"FP32","shape":[-1]}]}`),
		"huge shape":     hf(`{"ok":true,"tensors":[{"name":"x","datatype":"FP32","shape":[99999999,99999999]}]}`),
		"no name":        hf(`{"ok":true,"tensors":[{"name":"","datatype":"FP32","shape":[0]}]}`),
		"no shape":       hf(`{"ok":true,"tensors":[{"name":"x","datatype":"FP32"}]}`),
	}
	for name, b := range decodes {
		f, err := readFrame(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: the frame itself should read: %v", name, err)
			continue
		}
		if _, _, err := decodeReply(f); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	cases := map[string]greyerr.Code{
		"invalid_argument":    greyerr.InvalidArgument,
		"failed_precondition": greyerr.FailedPrecondition,
		"not_found":           greyerr.NotFound,
		"model_error":         greyerr.FailedPrecondition,
		"canceled":            greyerr.Canceled,
		"internal":            greyerr.Internal,
		"something new":       greyerr.Internal,
	}
	for code, want := range cases {
		err := errorOf(&replyError{Code: code, Message: "m"})
		if greyerr.CodeOf(err) != want {
			t.Errorf("%s: got %v, want %s", code, err, want)
		}
		if (code == "model_error") != errors.Is(err, ai.ErrModel) {
			t.Errorf("%s: errors.Is(ErrModel) = %v", code, errors.Is(err, ai.ErrModel))
		}
		if !strings.Contains(err.Error(), "m") {
			t.Errorf("%s: message lost: %v", code, err)
		}
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame reader and the reply
// decoder, as a broken or hostile runtime process could write them: no
// panic, no allocation past the limits, and what decodes re-encodes to
// the same tensors.
func FuzzDecodeFrame(f *testing.F) {
	ts := []ai.Tensor{{Name: "y", Datatype: ai.FP32, Shape: []int64{2, 1}, Data: make([]byte, 8)},
		{Name: "l", Datatype: ai.Int64, Shape: []int64{2}, Data: make([]byte, 16)}}
	f.Add(frameBytes(f, reply{ID: 1, OK: true, Tensors: specsOf(ts)}, ts))
	f.Add(frameBytes(f, reply{ID: 0, Op: "ready", OK: true, PID: 3, Protocol: 1}, nil))
	f.Add(frameBytes(f, reply{ID: 2, Error: &replyError{Code: "invalid_argument", Message: "shape"}}, nil))
	f.Add(frameBytes(f, reply{ID: 3, OK: true, Name: "grey-python", Frameworks: map[ai.Framework]string{ai.PyTorch: "2"}, Devices: []string{"cpu"}}, nil))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for i := 0; i < 4; i++ {
			fr, err := readFrame(r)
			if err != nil {
				return
			}
			if len(fr.header) > MaxHeader || len(fr.header)+len(fr.body)+4 > MaxFrame {
				t.Fatalf("frame past the limits: header %d body %d", len(fr.header), len(fr.body))
			}
			rp, out, err := decodeReply(fr)
			if err != nil {
				continue
			}
			var total int
			for j := range out {
				if err := out[j].Validate("out"); err != nil {
					t.Fatalf("decoded an invalid tensor: %v", err)
				}
				total += len(out[j].Data)
			}
			if total != len(fr.body) {
				t.Fatalf("tensors hold %d bytes of a %d-byte body", total, len(fr.body))
			}
			again, err := readFrame(bytes.NewReader(frameBytes(t, reply{ID: rp.ID, OK: true, Tensors: specsOf(out)}, out)))
			if err != nil {
				t.Fatal(err)
			}
			_, out2, err := decodeReply(again)
			if err != nil {
				t.Fatal(err)
			}
			for j := range out {
				if !bytes.Equal(out[j].Data, out2[j].Data) || !slices.Equal(out[j].Shape, out2[j].Shape) {
					t.Fatalf("tensor %d changed in a round trip", j)
				}
			}
		}
	})
}
