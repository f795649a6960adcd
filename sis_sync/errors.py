"""Errors the domain raises to its faces (commands, API, admin), each with an exit code."""

from __future__ import annotations


class SyncError(Exception):
    """Something a user asked for cannot be done; the message says why in plain words."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(SyncError):
    """Bad arguments or configuration."""

    exit_code = 2


class AlreadyRunning(SyncError):
    exit_code = 3

    def __init__(self, run_id: int) -> None:
        super().__init__(f"A sync of this provider is already running (run {run_id})")
        self.run_id = run_id
