"""Data movement between named endpoints: the interface, its result and error types, and the
local backend that copies between folders of this machine the way Globus would."""

from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.errors import (
    ChecksumMismatch,
    ExportControlled,
    PathNotFound,
    RenameConflict,
    TransferError,
    TransferFailed,
    UnknownEndpoint,
    UnsafePath,
)
from bl832_assets.resources.transfer.local import LocalTransferResource
from bl832_assets.resources.transfer.results import TaskStatus, TransferResult

__all__ = [
    "ChecksumMismatch",
    "ExportControlled",
    "LocalTransferResource",
    "PathNotFound",
    "RenameConflict",
    "TaskStatus",
    "TransferError",
    "TransferFailed",
    "TransferResource",
    "TransferResult",
    "UnknownEndpoint",
    "UnsafePath",
]
