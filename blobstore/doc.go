// Package blobstore is Grey's port to blob storage: the portable Bucket
// type that every part of Grey storing bytes uses (wasm modules, snapshot
// backups, large payloads and results), over a small Driver interface that
// driver subpackages implement (blobstore/fileblob, memblob, s3blob,
// gcsblob, azblob).
//
// The portable type owns, once for every driver: key validation, tenant
// scoping (Bucket.Tenant returns a view whose keys can never leave the
// tenant's prefix), cost tags on every object written, retries with
// exponential backoff for transient failures only, Prometheus metrics per
// operation, error codes from greyerr, and declared capabilities (an
// operation a driver cannot do is a greyerr.Unimplemented error, never a
// silent no-op). Drivers implement primitives with the contract written on
// each Driver method, and pass the conformance suite in
// blobstore/blobstoretest.
//
// Drivers are chosen by the scheme of a bucket URL through a Registry
// value: cmd/greyd creates one, registers the drivers it links
// (fileblob.Register(reg), s3blob.Register(reg), ...) and passes it down.
// There is no package-level default registry: what a binary can open is
// what its main registered, and the core packages never import a driver.
package blobstore
