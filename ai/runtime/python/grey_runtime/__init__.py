"""Grey's model runtime: a process that loads TorchScript files and
TensorFlow SavedModels and runs them for Grey's Go worker.

The worker starts it as ``python -m grey_runtime`` with this directory's
parent on PYTHONPATH and talks to it over stdin/stdout with the
length-prefixed frames of :mod:`grey_runtime.protocol` (see README.md).
Only the standard library and numpy are imported at start; torch and
tensorflow are imported when a model of that framework loads (torch also
for ``info``, to list CUDA devices), so an interpreter that has only one
of them serves that one.
"""

VERSION = "0.1.0"
"""Version of the runtime (reported by ``info``; it goes into proofs)."""

PROTOCOL = 1
"""Version of the frame protocol (sent in the ready frame)."""
