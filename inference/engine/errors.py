"""The engine's typed errors. Each message says what is wrong and how to fix it."""
from __future__ import annotations


class DeepStrataError(Exception):
    """Base of every error the engine raises on purpose."""


class ModelError(DeepStrataError):
    """The model file is missing, unreadable, not ONNX, or has a shape the engine cannot use."""


class CardError(ModelError):
    """The model card is missing or malformed; the message names the field."""

    def __init__(self, field: str, problem: str, source: str = "model card") -> None:
        self.field = field
        self.problem = problem
        where = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(f"{where}{problem}. See docs/model-card.md for the card format.")


class InputError(DeepStrataError):
    """The raster cannot be used as given: unreadable, wrong bands, extent outside it."""


class OutputError(DeepStrataError):
    """The output cannot be written where asked."""


class CancelledError(DeepStrataError):
    """The run was cancelled by the user; nothing was written."""

    def __init__(self, message: str = "The run was cancelled; no output was written.") -> None:
        super().__init__(message)


class DependencyError(DeepStrataError):
    """A package the engine needs (onnxruntime) is not installed in this Python."""


class DeviceError(InputError):
    """The device asked for is not one the engine knows."""


class DestinationError(OutputError):
    """Two outputs are the same file, or an output is a file the run reads."""


class DiskFullError(OutputError):
    """An output did not fit on its disk; the message says how much it needs and how much is free."""


class MissingCardError(CardError):
    """The model carries no card and no metadata that says what it computes; the message says how to say it."""

    def __init__(self, message: str) -> None:
        self.field, self.problem = "", message
        ModelError.__init__(self, message)


class ClusterError(DeepStrataError):
    """A Dask cluster could not be reached, went away during a run, or its workers cannot run it (a different
    DeepStrata, an input they cannot open); the message names the problem and the fix."""
