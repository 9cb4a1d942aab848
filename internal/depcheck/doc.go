// Package depcheck holds the architecture tests that keep Grey's core free
// of cloud, database and broker SDKs (they live in driver subpackages that
// only cmd/greyd links) and keep the replicated state machine
// deterministic (no clock or randomness in cluster/fsm.go or package
// state), and keep the executors free of greyd's configuration and API
// client. It has no code of its own; see its tests.
package depcheck
