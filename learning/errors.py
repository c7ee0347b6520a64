"""User-facing errors: a mistake the user can fix (a missing file, a foreign checkpoint, an option that does not
fit) is a UserError, which the command-line tools print as one line (cli_errors.run_cli), never a traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """A mistake the user can fix; its message is shown as one line, without a traceback."""
