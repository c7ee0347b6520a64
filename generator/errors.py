"""User-facing errors: anything the user can fix is a UserError, printed as one line by cli_errors.run_cli."""


class UserError(Exception):
    """A mistake in the input or environment that the user can fix; printed without a traceback."""
