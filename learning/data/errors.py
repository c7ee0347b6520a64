"""The learning side's one-line errors.

Transitional: learning/errors.py (made on another branch) owns UserError; until it is merged this
module defines a stand-in with the same meaning, and uses the real one as soon as it exists.
"""
try:
    from learning.errors import UserError
except ImportError:  # pragma: no cover - removed once learning/errors.py is merged

    class UserError(Exception):
        """A mistake the user can fix (a wrong path, a missing package): printed as one line, no traceback."""


__all__ = ["UserError"]
