// Package aidrivers is the one list of model runtime drivers Grey's
// binaries link: greyd opens the runtimes of ai.runtimes through it. The
// core (ai) imports no driver; a new driver is one import and one line
// here.
package aidrivers

import (
	"fmt"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/ai/oipruntime"
	"github.com/grey-distributed/grey/ai/pyruntime"
	"github.com/grey-distributed/grey/ai/tfsruntime"
)

// Registry returns a registry holding every model runtime driver of this
// build.
//
// The drivers (the supervised Python process, the Open Inference Protocol
// and TF Serving clients, the in-memory reference runtime) each provide a
// Register(*ai.Registry) error function; they are added to the list below
// as they land.
func Registry() (*ai.Registry, error) {
	reg := ai.NewRegistry()
	for _, register := range []func(*ai.Registry) error{
		memruntime.Register,
		pyruntime.Register, // python:///path/to/python?device=&threads=
		oipruntime.Register,
		tfsruntime.Register,
	} {
		if err := register(reg); err != nil {
			return nil, fmt.Errorf("runtime drivers: %w", err)
		}
	}
	return reg, nil
}
