// Package certs holds Grey's X.509 material: the development CA and node
// certificates that `greyd certs init|issue` writes, the node identity a
// certificate carries (its role and id, in a URI SAN such as
// spiffe://grey/server/node-1), a key pair that is read again when its
// files change, and the tls.Configs of the API listener, the Raft
// transport and node-to-node clients, built from the tls block of the
// configuration.
//
// Only the standard library's crypto packages are used.
package certs
