package proof

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	gojson "github.com/goccy/go-json"
)

// MaxBatch is the most tasks one statement covers; it bounds an envelope
// (about 680 bytes of envelope per task with UUID task ids, so about
// 44 KB for a full batch) while one signature serves the batch.
const MaxBatch = 64

// Signer signs proofs on a node: its key, its id and its platform's
// attester. It is safe for concurrent use.
type Signer struct {
	// Key is the node's signing key.
	Key *Key
	// NodeID is put in every predicate.
	NodeID string
	// Attester gives the platform and quotes; nil means [Software].
	Attester Attester
	// OnQuote, if set, is told each TEE quote's platform, outcome and
	// duration (for metrics).
	OnQuote func(platform string, err error, d time.Duration)
	// OnSign, if set, is told each signed statement's platform, how many
	// tasks it covers, and the error when signing failed (for metrics).
	OnSign func(platform string, tasks int, err error)
}

// Platform is the signer's platform name.
func (s *Signer) Platform() string {
	if s.Attester == nil {
		return PlatformSoftware
	}
	return s.Attester.Platform()
}

// Sign builds the statement for runs (tasks of one tenant, at most
// [MaxBatch]) and returns its envelope encoded as JSON.
// When the attester has a quote, it is taken over the statement without
// the quote ([QuoteReportData] of
// [StatementDigestForQuote]) and embedded in the predicate.
func (s *Signer) Sign(ctx context.Context, tenantID string, runs ...Run) (env json.RawMessage, err error) {
	if s != nil && s.OnSign != nil {
		defer func() { s.OnSign(s.Platform(), len(runs), err) }()
	}
	if s == nil || s.Key == nil {
		return nil, errors.New("proof: no signing key")
	}
	if len(runs) == 0 || len(runs) > MaxBatch {
		return nil, fmt.Errorf("proof: %d runs in one statement (1 to %d)", len(runs), MaxBatch)
	}
	st := NewStatement(tenantID, s.NodeID, s.Platform(), runs...)
	if s.Attester != nil && s.Platform() != PlatformSoftware {
		d, err := StatementDigestForQuote(st)
		if err != nil {
			return nil, err
		}
		rd := QuoteReportData(s.Key.KeyID(), d)
		began := time.Now()
		q, err := s.Attester.Quote(ctx, rd)
		if s.OnQuote != nil {
			s.OnQuote(s.Platform(), err, time.Since(began))
		}
		if err != nil {
			return nil, fmt.Errorf("proof: %s quote: %w", s.Platform(), err)
		}
		st.Predicate.TEEQuote = q
	}
	e, err := Sign(s.Key, st)
	if err != nil {
		return nil, err
	}
	return gojson.Marshal(e)
}

// ParseEnvelope decodes a DSSE envelope from JSON, refusing trailing data
// and envelopes without payload or signatures.
func ParseEnvelope(b []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("envelope is not DSSE JSON: %w", err)
	}
	if env.PayloadType == "" || env.Payload == "" {
		return nil, errors.New("envelope has no payloadType or payload")
	}
	if len(env.Signatures) == 0 {
		return nil, errors.New("envelope has no signatures")
	}
	return &env, nil
}

// BinaryExecutor measures the running program: name, the main module's
// version (with the VCS revision when the build recorded one) and the
// SHA-256 of the executable file. Built-in kinds are measured this way.
func BinaryExecutor(name string) (Executor, error) {
	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				version += "+" + s.Value
			}
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return Executor{}, fmt.Errorf("measure executable: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return Executor{}, fmt.Errorf("measure executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Executor{}, fmt.Errorf("measure executable %s: %w", exe, err)
	}
	return Executor{Name: name, Version: version, Digest: DigestAlgorithm + ":" + hex.EncodeToString(h.Sum(nil))}, nil
}
