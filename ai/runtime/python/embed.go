// Package python carries Grey's Python model runtime, the grey_runtime
// package beside this file, into the Go binaries that start it: the
// pyruntime driver writes these sources to a private directory and runs
// `python -m grey_runtime` with that directory on PYTHONPATH, so a worker
// needs no pip install and no checkout of the repository. README.md
// describes the frame protocol the runtime speaks.
package python

import (
	"embed"
	"io/fs"
)

//go:embed grey_runtime/*.py
var sources embed.FS

// Sources returns the runtime's Python files, rooted so that
// "grey_runtime/__main__.py" is one of them.
func Sources() fs.FS { return sources }

// PackageName is the Python package to run with `python -m`.
const PackageName = "grey_runtime"
