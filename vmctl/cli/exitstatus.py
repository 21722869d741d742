"""The exit statuses vmctl promises scripts; Terraform's meanings, so CI treats vmctl like terraform."""

from enum import IntEnum


class ExitStatus(IntEnum):
    """How a vmctl process ends."""

    OK = 0
    ERROR = 1  # a failure, a usage error included: typer's own 2 would read as "changes present"
    CHANGES_PRESENT = 2  # only with `plan --detailed-exitcode`
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
