"""`python -m vmctl`."""

from vmctl.cli import run

run()
