"""Errors the runtime answers with, each carrying a protocol code."""


class RuntimeFault(Exception):
    """An error answered to the caller with a protocol code."""

    code = "internal"

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidArgument(RuntimeFault):
    """The inputs do not fit the model (shape, datatype, name, count)."""

    code = "invalid_argument"


class FailedPrecondition(RuntimeFault):
    """The artifact is not a model for the framework, or this interpreter
    cannot serve the framework."""

    code = "failed_precondition"


class ModelError(RuntimeFault):
    """The model raised while running."""

    code = "model_error"


class NotFound(RuntimeFault):
    """No model is loaded under the key."""

    code = "not_found"


class Canceled(RuntimeFault):
    """The caller canceled the request before it started."""

    code = "canceled"
