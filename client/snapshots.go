package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/greyerr"
)

// SnapshotInfo describes a snapshot file: its header, and for a restore
// what it held.
type SnapshotInfo = apitypes.SnapshotInfo

// SaveSnapshot downloads a fresh snapshot of the cluster's state (GET
// /api/v1/cluster/snapshot, an admin route; the leader takes it) and writes
// the snapshot file to w. The file is checked as it streams (header, length
// and checksum): an error means w holds an incomplete or damaged file.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) (*SnapshotInfo, error) {
	const path = "/api/v1/cluster/snapshot"
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: path, accept: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(resp)
	}
	info, err := copySnapshot(w, resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return info, nil
}

// copySnapshot copies a snapshot file from r to w, checking it.
func copySnapshot(w io.Writer, r io.Reader) (*SnapshotInfo, error) {
	bad := func(format string, args ...any) error {
		return &greyerr.Error{Code: greyerr.Internal, Message: "snapshot download: " + fmt.Sprintf(format, args...)}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	h := sha256.New()
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, bad("no header line: %v", err)
	}
	var hdr apitypes.SnapshotHeader
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != apitypes.SnapshotFormat || hdr.Size <= 0 {
		return nil, bad("the answer is not a format-%d snapshot file", apitypes.SnapshotFormat)
	}
	mw := io.MultiWriter(w, h)
	if _, err := mw.Write(line); err != nil {
		return nil, err
	}
	n, err := io.CopyN(mw, br, hdr.Size)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, bad("cut after %d of %d payload bytes: %v", n, hdr.Size, err)
	}
	trailer, err := br.ReadSlice('\n')
	if err != nil {
		return nil, bad("the checksum line is missing: %v", err)
	}
	if !bytes.Equal(trailer, apitypes.SnapshotChecksumLine(h.Sum(nil))) {
		return nil, bad("checksum mismatch")
	}
	if _, err := w.Write(trailer); err != nil {
		return nil, err
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, bad("data after the checksum line")
	}
	return hdr.Info(), nil
}

// RestoreSnapshot uploads a snapshot file read from r (POST
// /api/v1/cluster/snapshot, an admin route) and replaces the cluster's
// tasks, tenants and usage with its contents. The server checks the whole
// file first: a damaged file, or one taken from another cluster while force
// is false (and this cluster holds state), is refused with InvalidArgument
// and nothing changes.
//
// The body is streamed, so the request goes to one server; when r is an
// io.ReadSeeker it is rewound and sent to the next server if one does not
// answer or is unavailable.
func (c *Client) RestoreSnapshot(ctx context.Context, r io.Reader, force bool) (*SnapshotInfo, error) {
	const path = "/api/v1/cluster/snapshot"
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	seeker, _ := r.(io.ReadSeeker)
	var start int64
	if seeker != nil {
		pos, err := seeker.Seek(0, io.SeekCurrent)
		if err != nil {
			seeker = nil
		}
		start = pos
	}
	n := len(c.servers)
	first := int(c.preferred.Load())
	var lastErr error
	for i := range n {
		if i > 0 {
			if seeker == nil {
				break
			}
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				break
			}
		}
		idx := (first + i) % n
		req, err := c.newRequest(ctx, c.servers[idx], &request{method: http.MethodPost, path: path, query: q})
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(r)
		req.ContentLength = -1
		if f, ok := r.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				req.ContentLength = st.Size() - start
			}
		} else if b, ok := r.(*bytes.Reader); ok {
			req.ContentLength = int64(b.Len())
		}
		if req.ContentLength == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = &greyerr.Error{Code: greyerr.Unavailable, Message: fmt.Sprintf("POST %s: %s did not answer", path, c.servers[idx].Host), Err: err}
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			lastErr = decodeError(resp)
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, decodeError(resp)
		}
		var info SnapshotInfo
		if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
			return nil, greyerr.Wrap(greyerr.Internal, err, "POST %s: decode response", path)
		}
		if idx != first {
			c.preferred.Store(int32(idx))
		}
		return &info, nil
	}
	return nil, lastErr
}
