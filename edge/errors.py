"""User-facing errors: one line that says what was wrong and what to do."""


class EdgeError(Exception):
    """Bad input or configuration. The CLI prints the message as one line and exits non-zero."""

    exit_code = 2
