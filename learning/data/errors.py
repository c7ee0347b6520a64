"""The learning side's one-line errors (defined once in learning.errors)."""

from learning.errors import UserError

__all__ = ["UserError"]
