// Package task holds Grey's task model: the fields of DESIGN §5, the states a
// task moves through and the transitions between them, the retry policy, and
// validation of what a client submits. It is a leaf package: the state store,
// scheduler, API, client and workers all share these types.
package task
