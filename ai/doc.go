// Package ai owns Grey's inference vocabulary: tensors in the Open
// Inference Protocol (KServe v2) form, models and their references, and the
// runtime port — a small Runtime driver interface with drivers chosen by URL
// scheme (a supervised Python process, remote Open Inference Protocol and
// TF Serving servers, an in-memory reference driver) — that the inference
// executor batches requests onto.
//
// Tensors keep their elements as little-endian bytes in row-major order, so
// that batching is a concatenation along the first dimension and splitting a
// slice of it, and so that a tensor crosses a process boundary without a
// per-element conversion. JSON is the outside form only.
//
// The package imports no framework SDK: drivers live in subpackages and are
// linked by the binaries that want them.
package ai
