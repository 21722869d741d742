"""`python -m vmctl`."""

from vmctl.cli import main

main()
