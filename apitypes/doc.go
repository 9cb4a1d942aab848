// Package apitypes holds the JSON bodies of Grey's HTTP API that both sides
// speak: the server (api, engine, cluster) writes them and the Go client
// reads them, from this one definition, so the two cannot drift apart. It
// also defines the snapshot file format, which the server writes and reads
// and the client checks as it downloads. It is a leaf package: it imports
// only the value types of task and tenant, never server code.
//
// Cluster membership bodies (cluster facts, members, joins) live in the
// sibling leaf package membership.
package apitypes
