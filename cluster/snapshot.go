package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
)

// SnapshotFormat is the version of the snapshot file envelope written by
// SnapshotFile.WriteTo and read by ReadSnapshot; apitypes.SnapshotFormat
// describes the file.
const SnapshotFormat = apitypes.SnapshotFormat

// maxSnapshotLine bounds the header and checksum lines.
const maxSnapshotLine = 64 << 10

// SnapshotHeader is the first line of a snapshot file.
type SnapshotHeader = apitypes.SnapshotHeader

// trailerLen is the length of the checksum line.
var trailerLen = int64(len(apitypes.SnapshotChecksumLine(make([]byte, sha256.Size))))

// SnapshotFile is an open Raft snapshot ready to be written out in the
// snapshot file format. Close it when done.
type SnapshotFile struct {
	// Header is the file's first line.
	Header SnapshotHeader
	hdr    []byte
	rc     io.ReadCloser
	br     *bufio.Reader
}

// OpenSnapshot takes a Raft snapshot now (or, when nothing was applied since
// the last one, uses that) and opens it.
func (n *Node) OpenSnapshot() (*SnapshotFile, error) {
	var (
		meta *raft.SnapshotMeta
		rc   io.ReadCloser
	)
	// Taken before the snapshot: the file holds every write acknowledged
	// before its CreatedAt.
	created := time.Now().UTC()
	f := n.raft.Snapshot()
	err := f.Error()
	switch {
	case err == nil:
		meta, rc, err = f.Open()
	case errors.Is(err, raft.ErrNothingNewToSnapshot):
		var metas []*raft.SnapshotMeta
		if metas, err = n.snaps.List(); err == nil {
			if len(metas) == 0 {
				return nil, greyerr.New(greyerr.Unavailable, "no snapshot to open yet")
			}
			meta, rc, err = n.snaps.Open(metas[0].ID)
		}
	default:
		if e := raftError(err, 0); greyerr.CodeOf(e) == greyerr.Unavailable {
			return nil, e
		}
		return nil, greyerr.Wrap(greyerr.Internal, err, "take snapshot")
	}
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "open snapshot")
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	// The payload's own first line names the cluster it holds, whatever
	// happened to the store since.
	first, err := br.Peek(min(maxSnapshotLine, int(meta.Size)))
	if err != nil && !errors.Is(err, io.EOF) {
		rc.Close()
		return nil, greyerr.Wrap(greyerr.Internal, err, "read snapshot %s", meta.ID)
	}
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	var ph struct {
		ClusterID string `json:"cluster_id"`
	}
	if err := json.Unmarshal(first, &ph); err != nil {
		rc.Close()
		return nil, greyerr.Wrap(greyerr.Internal, err, "snapshot %s: payload header", meta.ID)
	}
	sf := &SnapshotFile{
		Header: SnapshotHeader{
			Format: SnapshotFormat, ClusterID: ph.ClusterID, NodeID: n.cfg.NodeID,
			Index: meta.Index, Term: meta.Term, Size: meta.Size, CreatedAt: created,
		},
		rc: rc,
		br: br,
	}
	sf.hdr, _ = json.Marshal(sf.Header)
	sf.hdr = append(sf.hdr, '\n')
	return sf, nil
}

// Len is the length of the whole file WriteTo writes.
func (f *SnapshotFile) Len() int64 { return int64(len(f.hdr)) + f.Header.Size + trailerLen }

// WriteTo writes the snapshot file: header, payload and checksum. It may be
// called once.
func (f *SnapshotFile) WriteTo(w io.Writer) (int64, error) {
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	n, err := mw.Write(f.hdr)
	total := int64(n)
	if err != nil {
		return total, err
	}
	m, err := io.CopyN(mw, f.br, f.Header.Size)
	total += m
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("snapshot shorter than its metadata says (%d of %d bytes)", m, f.Header.Size)
		}
		return total, err
	}
	n, err = w.Write(apitypes.SnapshotChecksumLine(h.Sum(nil)))
	return total + int64(n), err
}

// Close releases the snapshot.
func (f *SnapshotFile) Close() error { return f.rc.Close() }

// StagedSnapshot is a snapshot file that was read in full and checked: its
// payload sits in a temporary file and decoded into a scratch store without
// error, so restoring it cannot fail on its content. Close removes it.
type StagedSnapshot struct {
	// Header is the file's header line.
	Header SnapshotHeader
	// Store is the payload decoded into a scratch store (read-only use).
	Store *state.Store
	file  *os.File
}

// Close removes the staged payload.
func (s *StagedSnapshot) Close() error {
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	if rerr := os.Remove(s.file.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	s.file = nil
	return err
}

// badSnapshot is the InvalidArgument error of a file that is not a sound
// snapshot.
func badSnapshot(format string, args ...any) error {
	return greyerr.Invalid("body", format, args...)
}

// ReadSnapshot reads a snapshot file from r, checking its header, length
// and checksum, stages the payload in a temporary file in dir ("" = the
// system's) and decodes it into a scratch store. A file that is not a
// snapshot, is truncated, corrupt or has trailing data is an InvalidArgument
// error saying which; other failures are Internal.
func ReadSnapshot(r io.Reader, dir string) (*StagedSnapshot, error) {
	br := bufio.NewReaderSize(r, maxSnapshotLine)
	h := sha256.New()
	line, err := readLine(br)
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil, badSnapshot("empty: a Grey snapshot file starts with a {\"grey_snapshot\":1,…} header line")
		}
		return nil, badSnapshot("not a Grey snapshot file: no header line (%v)", err)
	}
	h.Write(line)
	var hdr SnapshotHeader
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&hdr); err != nil || hdr.Format == 0 {
		return nil, badSnapshot("not a Grey snapshot file: the first line is not a {\"grey_snapshot\":1,…} header")
	}
	switch {
	case hdr.Format != SnapshotFormat:
		return nil, badSnapshot("snapshot format %d is not supported (this server reads format %d)", hdr.Format, SnapshotFormat)
	case hdr.Size <= 0:
		return nil, badSnapshot("snapshot header has size %d; it must be positive", hdr.Size)
	}
	f, err := os.CreateTemp(dir, "grey-restore-*.tmp")
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "stage snapshot")
	}
	st := &StagedSnapshot{Header: hdr, file: f}
	ok := false
	defer func() {
		if !ok {
			_ = st.Close()
		}
	}()
	if err := stagePayload(br, f, h, hdr.Size); err != nil {
		return nil, err
	}
	if err := checkTrailer(br, h); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "stage snapshot")
	}
	scratch := state.New()
	if err := scratch.Restore(bufio.NewReaderSize(f, 1<<20)); err != nil {
		return nil, badSnapshot("snapshot payload does not decode: %v", err)
	}
	if scratch.ClusterID() != hdr.ClusterID {
		return nil, badSnapshot("corrupt snapshot: the header names cluster %q, the payload %q", hdr.ClusterID, scratch.ClusterID())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "stage snapshot")
	}
	st.Store = scratch
	ok = true
	return st, nil
}

func stagePayload(br *bufio.Reader, f *os.File, h hash.Hash, size int64) error {
	n, err := io.CopyN(f, io.TeeReader(br, h), size)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return badSnapshot("truncated snapshot: the payload ends after %d of %d bytes", n, size)
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			return greyerr.Wrap(greyerr.Internal, err, "stage snapshot")
		}
		return badSnapshot("reading the snapshot after %d bytes: %v", n, err)
	}
	return nil
}

func checkTrailer(br *bufio.Reader, h hash.Hash) error {
	line, err := readLine(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return badSnapshot("truncated snapshot: the checksum line is missing or cut")
		}
		return badSnapshot("reading the checksum line: %v", err)
	}
	// The line must be exactly as written: {"sha256":"<lower-case hex>"}.
	sum := h.Sum(nil)
	if !bytes.Equal(line, apitypes.SnapshotChecksumLine(sum)) {
		var tr apitypes.SnapshotChecksum
		if err := json.Unmarshal(line, &tr); err != nil || tr.SHA256 == "" {
			return badSnapshot("corrupt snapshot: the line after the payload is not a {\"sha256\":…} checksum (wrong size in the header?)")
		}
		return badSnapshot("corrupt snapshot: sha256 is %s, the file says %s", hex.EncodeToString(sum), tr.SHA256)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		if err != nil {
			return badSnapshot("reading past the checksum line: %v", err)
		}
		return badSnapshot("corrupt snapshot: data follows the checksum line")
	}
	return nil
}

// readLine reads one '\n'-terminated line of at most maxSnapshotLine bytes
// (the newline included in the result).
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("line longer than %d bytes", maxSnapshotLine)
	}
	if err != nil {
		if len(line) > 0 && errors.Is(err, io.EOF) {
			return line, io.ErrUnexpectedEOF
		}
		return line, err
	}
	return append([]byte(nil), line...), nil
}

// StageDir is where RestoreSnapshot's callers should stage payloads: the
// node's data dir (same disk as the Raft snapshots).
func (n *Node) StageDir() string { return filepath.Join(n.cfg.DataDir, "raft") }

// RestoreSnapshot replaces the replicated state with a staged snapshot on
// every server (a Raft user restore: the current membership is kept, the
// log jumps past the snapshot's index and followers install it). Leader
// only.
func (n *Node) RestoreSnapshot(ctx context.Context, s *StagedSnapshot) error {
	if s.file == nil {
		return greyerr.New(greyerr.Internal, "snapshot already restored or closed")
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return greyerr.Wrap(greyerr.Internal, err, "rewind staged snapshot")
	}
	meta := &raft.SnapshotMeta{
		Version: raft.SnapshotVersionMax,
		Index:   s.Header.Index,
		Term:    s.Header.Term,
		Size:    s.Header.Size,
	}
	timeout := 5 * time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	err := n.raft.Restore(meta, bufio.NewReaderSize(s.file, 1<<20), timeout)
	switch {
	case err == nil:
		return nil
	case greyerr.CodeOf(raftError(err, 0)) == greyerr.Unavailable:
		return raftError(err, 0)
	case strings.Contains(err.Error(), "cannot restore snapshot now"):
		// A membership change is still being committed.
		return &greyerr.Error{Code: greyerr.Unavailable, Message: "raft restore", Err: err, RetryAfter: time.Second}
	}
	return greyerr.Wrap(greyerr.Internal, err, "raft restore")
}
