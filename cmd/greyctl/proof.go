package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/proof/tee"
	"github.com/grey-distributed/grey/task"
)

func newProofCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proof",
		Short: "Show and verify tasks' signed execution proofs",
		RunE:  groupRun,
	}
	cmd.AddCommand(newProofGetCmd(a), newProofVerifyCmd(a))
	return cmd
}

func newProofGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Print a task's proof: the DSSE envelope (-o json: with the short form and the server's check)",
		Long: `Print a completed task's proof. Without -o json it prints the DSSE envelope
alone, ready for standard DSSE tooling or "greyctl proof verify --file".`,
		Example: `  greyctl proof get 0195a3b4-... > proof.json
  greyctl proof get 0195a3b4-... -o json | jq .short`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			rec, err := c.Proof(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, rec)
			}
			return writeJSON(a.stdout, rec.Envelope)
		},
	}
}

// verifyReport is the -o json output of "proof verify".
type verifyReport struct {
	TaskID string   `json:"task_id"`
	Valid  bool     `json:"valid"`
	Reason string   `json:"reason,omitempty"`
	Checks []string `json:"checks"`
	// Statement is the verified statement (absent when invalid).
	Statement *proof.Statement `json:"statement,omitempty"`
}

func newProofVerifyCmd(a *app) *cobra.Command {
	var file, keyFile string
	var fetch bool
	cmd := &cobra.Command{
		Use:   "verify ID",
		Short: "Verify a task's proof against the cluster's keys and the stored task",
		Long: `Verify a task's proof: the DSSE signature with the cluster's registered node
keys (GET /api/v1/cluster/keys) or with --key, the statement's structure, and
the task id, tenant, input digest and output digest against the task as stored
(GET /api/v1/tasks/ID). The envelope is the one the cluster holds, or --file.

With --fetch, also download every stored object the proof names (the payload
object a task read by payload_ref, the result Grey stored for it) and hash it:
an object changed after its proof makes the proof INVALID, naming the digest
that differs.

Exit code 0 when valid, 1 with the reason otherwise.`,
		Example: `  greyctl proof verify 0195a3b4-...
  greyctl proof verify 0195a3b4-... --file proof.json --key node-1.pub
  greyctl proof verify 0195a3b4-... --fetch`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			id := args[0]
			// A stored result that changed fails the fetch Get does; the
			// task itself still comes back and the proof is checked
			// against the digests Grey recorded.
			t, getErr := c.Get(ctx, id)
			if t == nil {
				return failure(getErr)
			}
			rep := &verifyReport{TaskID: id, Checks: []string{}}
			var env *proof.Envelope
			if file != "" {
				if env, err = readEnvelope(file); err != nil {
					return usageErrorf("--file: %v", err)
				}
				rep.Checks = append(rep.Checks, "envelope: read from "+file)
			} else {
				rec, err := c.Proof(ctx, id)
				if err != nil {
					return failure(err)
				}
				env = rec.Envelope
				rep.Checks = append(rep.Checks, "envelope: fetched from the cluster")
			}
			var ring proof.KeyRing
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return usageErrorf("--key: %v", err)
				}
				pub, err := proof.ParsePublicKey(string(b))
				if err != nil {
					return usageErrorf("--key %s: %v", keyFile, err)
				}
				ring = proof.NewKeyRing(pub)
				rep.Checks = append(rep.Checks, "keys: "+keyFile)
			} else {
				if ring, err = c.KeyRing(ctx); err != nil {
					return failure(err)
				}
				rep.Checks = append(rep.Checks, fmt.Sprintf("keys: the cluster's %d registered node keys", len(ring)))
			}
			st, verr := proof.Verify(env, ring, proof.Expect{
				TaskID: t.ID, TenantID: t.TenantID,
				InputDigest: inputDigest(t), OutputDigest: outputDigest(t),
			})
			if verr == nil && t.Status != task.Completed {
				verr = fmt.Errorf("task is %s, not completed", t.Status)
			}
			var objs []proof.Object
			if verr == nil {
				x, _, _ := st.Find(t.ID)
				objs = x.Objects
				if fetch {
					checks, ferr := c.VerifyObjects(ctx, objs)
					for _, ck := range checks {
						if ck.Err == "" {
							rep.Checks = append(rep.Checks, fmt.Sprintf("stored object %s (%s): downloaded %d bytes, sha256:%s matches the proof", ck.Object.Name, ck.Object.Role, ck.Size, ck.Got))
						}
					}
					if ferr != nil {
						verr = ferr
					} else if len(objs) == 0 {
						rep.Checks = append(rep.Checks, "stored objects: the proof names none (payload and result are inline)")
					}
				} else if getErr != nil {
					verr = getErr
				}
			}
			if verr != nil {
				rep.Reason = verr.Error()
				if a.json() {
					_ = writeJSON(a.stdout, rep)
					return &exitError{code: exitFailure}
				}
				for _, c := range rep.Checks {
					fmt.Fprintln(a.stdout, "  "+c)
				}
				return failure(fmt.Errorf("proof of task %s is INVALID: %w", id, verr))
			}
			p := st.Predicate
			x, out, _ := st.Find(t.ID)
			rep.Valid, rep.Statement = true, st
			rep.Checks = append(rep.Checks,
				"signature: valid ed25519 DSSE signature by key "+env.Signatures[0].KeyID,
				fmt.Sprintf("statement: %s with predicate %s covering %d task(s) of tenant %s", proof.StatementType, proof.PredicateType, len(p.Executions), p.TenantID),
				"task: "+x.TaskID+" of tenant "+p.TenantID,
				"input digest: sha256:"+x.InputDigest+" matches the stored payload",
				"output digest: sha256:"+out+" matches the stored result",
				fmt.Sprintf("ran: %s by %s %s (measurement %s) on node %s, platform %s, attempt %d, finished %s",
					x.Kind, x.Executor.Name, x.Executor.Version, x.Executor.Digest, p.NodeID, p.Platform, x.Attempt, x.FinishedAt.Format(time.RFC3339Nano)),
			)
			if len(p.TEEQuote) > 0 {
				if err := tee.CheckBinding(st, env.Signatures[0].KeyID); err != nil {
					rep.Valid, rep.Statement, rep.Reason = false, nil, "the TEE quote does not bind this statement: "+err.Error()
					if a.json() {
						_ = writeJSON(a.stdout, rep)
						return &exitError{code: exitFailure}
					}
					return failure(fmt.Errorf("proof of task %s is INVALID: %s", id, rep.Reason))
				}
				rep.Checks = append(rep.Checks, fmt.Sprintf("tee quote: %d bytes from %s; its report data binds this statement and key (the quote's chain to the vendor's roots is not checked)", len(p.TEEQuote), p.Platform))
			}
			if a.json() {
				return writeJSON(a.stdout, rep)
			}
			for _, c := range rep.Checks {
				fmt.Fprintln(a.stdout, "  ok  "+c)
			}
			fmt.Fprintf(a.stdout, "proof of task %s is valid\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "verify this envelope file (a DSSE envelope, or the -o json output of proof get) instead of the cluster's copy")
	cmd.Flags().BoolVar(&fetch, "fetch", false, "download and hash every stored object the proof names (payload and result objects)")
	cmd.Flags().StringVar(&keyFile, "key", "", "verify with this ed25519 public key (PEM or base64) instead of the cluster's keys")
	return cmd
}

// readEnvelope reads a DSSE envelope, or a proof record holding one.
func readEnvelope(path string) (*proof.Envelope, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec struct {
		Envelope json.RawMessage `json:"envelope"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s is not JSON: %w", path, err)
	}
	if len(rec.Envelope) > 0 {
		b = rec.Envelope
	}
	env, err := proof.ParseEnvelope(b)
	if err != nil {
		return nil, errors.New(path + ": " + err.Error())
	}
	return env, nil
}

func newReplayCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "replay ID",
		Short: "Re-run a deterministic completed task and compare its output digest",
		Long: `Re-run a completed task of a deterministic kind (wasm without clock or
randomness, the built-in kinds) on the cluster and compare the output's SHA-256
with the stored result's and the proof's. Exit code 0 when they match, 1
otherwise.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			r, err := c.Replay(cmd.Context(), args[0])
			if err != nil {
				return failure(err)
			}
			if a.json() {
				if err := writeJSON(a.stdout, r); err != nil {
					return err
				}
			} else {
				tw := newTabWriter(a.stdout)
				fmt.Fprintf(tw, "Task:\t%s (%s)\n", r.TaskID, r.Kind)
				fmt.Fprintf(tw, "Stored output:\tsha256:%s\n", r.StoredDigest)
				if r.ProofDigest != "" {
					fmt.Fprintf(tw, "Proven output:\tsha256:%s\n", r.ProofDigest)
				}
				if r.ReplayDigest != "" {
					fmt.Fprintf(tw, "Replay output:\tsha256:%s\n", r.ReplayDigest)
				}
				if r.Error != "" {
					fmt.Fprintf(tw, "Replay error:\t%s\n", r.Error)
				}
				fmt.Fprintf(tw, "Replayed on:\t%s in %.2f ms\n", r.Node, r.DurationMS)
				fmt.Fprintf(tw, "Match:\t%v\n", r.Match)
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if !r.Match {
				return &exitError{code: exitFailure}
			}
			return nil
		},
	}
}

// inputDigest and outputDigest are what the proof's digests must be
// (proof.InputDigest, proof.OutputDigest: RFC 8785 canonical JSON of an
// inline value, the bytes of a stored object).
func inputDigest(t *task.Task) string { return proof.InputDigest(t) }

func outputDigest(t *task.Task) string { return proof.OutputDigest(t) }
