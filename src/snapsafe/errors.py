"""Errors that reach the user as one line (see snapsafe.cli)."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad input or a missing facility. Printed as one line."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(UserError):
    """Bad command-line input (exit 2)."""


class EnvironmentProblem(UserError):
    """A facility the command needs is missing or not permitted (exit 2)."""


class TargetError(UserError):
    """The target does not exist, does not import, fails to initialise or is not callable (exit 2)."""

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.details = details  # the target's traceback, shown with --verbose


class Failure(UserError):
    """The command ran but found problems (exit 1)."""

    exit_code = 1
