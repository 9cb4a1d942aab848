"""grey-client: the Python SDK of Grey Distributed.

- :class:`Client` and :class:`AsyncClient`: submit, batch submit, get, wait,
  list (cursor paging and filters), cancel, replay, proofs;
- :mod:`grey_client.models`: typed models checked against ``api/openapi.yaml``;
- :mod:`grey_client.errors`: one exception class per Grey error code;
- :mod:`grey_client.proof`: RFC 8785 digests, DSSE + ed25519 verify and sign;
- :class:`Worker`: ``@worker.task("resize")`` handlers run with the Go
  workers' lease / heartbeat / report protocol.
"""

from . import errors, models, proof
from ._base import FileToken
from .aio import AsyncClient
from .client import Client
from .errors import (
    AlreadyExists,
    FailedPrecondition,
    GreyError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    WaitTimeout,
)
from .models import Spec, Task, TaskPage
from .proof import ProofError
from .worker import Job, PermanentError, RetryableError, Worker

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "Client",
    "FailedPrecondition",
    "FileToken",
    "GreyError",
    "InvalidArgument",
    "Job",
    "NotFound",
    "PermanentError",
    "PermissionDenied",
    "ProofError",
    "ResourceExhausted",
    "RetryableError",
    "Spec",
    "Task",
    "TaskPage",
    "Unauthenticated",
    "Unavailable",
    "WaitTimeout",
    "Worker",
    "__version__",
    "errors",
    "models",
    "proof",
]
