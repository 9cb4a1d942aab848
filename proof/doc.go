// Package proof produces and verifies signed execution proofs for finished
// tasks (DESIGN §7).
//
// A proof is an in-toto Statement v1 wrapped in a DSSE envelope. One
// statement covers 1 to [MaxBatch] tasks of one tenant that one node
// finished together, so one signature serves the batch:
//
//   - subject i is "task-output/<task id>" with the SHA-256 of task i's
//     output bytes;
//   - the predicate (predicateType https://grey.dev/task-execution/v1, see
//     [Predicate]) names the tenant, the node and the platform ("software"
//     unless a TEE attester is present) and, in executions[i], task i's id,
//     kind, the SHA-256 of its input payload, the executor (name, version
//     and digest: the measurement), the attempt and the start and finish
//     times; optionally a TEE quote binding the statement;
//   - the envelope (payloadType application/vnd.in-toto+json) is signed
//     with the node's ed25519 key over DSSE's PAE(payloadType, payload), so
//     standard DSSE tooling verifies it (see docs/PROOFS.md).
//
// Node keys are created by [LoadOrCreateKey] (PKCS#8 PEM, mode 0600);
// verifiers hold public keys in a [KeyRing] indexed by [KeyIDOf]. A
// worker's [Signer] builds and signs a batch; [Verify] checks the
// signature, the payload type, the statement and the fields the verifier
// expects of one task, and names exactly what differs when something does.
// [ShortForm] is the seed's short view of one task (task_id, platform,
// measurement, signature, timestamp). [Record], [Replay] and [NodeKey] are
// the API's wire types.
//
// [Attester] abstracts TEE quoting: [Software] is the default, package
// proof/tee holds the SGX, TDX, SEV-SNP and Nitro attesters, [Detect]
// reports which TEE guest interfaces are present, and [QuoteReportData] is
// what a quote binds.
package proof
