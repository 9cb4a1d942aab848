// Package proof produces and verifies signed execution proofs for finished
// tasks (DESIGN §7).
//
// A proof is an in-toto Statement v1 wrapped in a DSSE envelope:
//
//   - the Statement's single subject is "task-output" with the SHA-256 of the
//     task's output bytes;
//   - its predicate (predicateType https://grey.dev/task-execution/v1, see
//     [Predicate]) records the task id, tenant, kind, the SHA-256 of the input
//     payload, the executor (name, version and digest: the measurement), the
//     node, the platform ("software" unless a TEE attester is present), the
//     attempt, the start and finish times and, optionally, a TEE quote;
//   - the envelope (payloadType application/vnd.in-toto+json) is signed
//     with the node's ed25519 key over DSSE's PAE(payloadType, payload), so
//     standard DSSE tooling verifies it (see docs/PROOFS.md).
//
// Node keys are created by [LoadOrCreateKey] (PKCS#8 PEM, mode 0600);
// verifiers hold public keys in a [KeyRing] indexed by [KeyIDOf]. [Sign]
// makes an [Envelope] from a [Statement]; [Verify] checks the signature,
// the payload type, the statement and the fields the verifier expects, and
// names exactly what differs when something does. [ShortForm] is the seed's
// short view (task_id, platform, measurement, signature, timestamp).
//
// [Attester] abstracts TEE quoting; only [Software] exists, and [Detect]
// reports which TEE guest devices are present.
package proof
