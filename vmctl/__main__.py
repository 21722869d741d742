"""`python -m vmctl`: the same program as the `vmctl` command."""

from vmctl.cli.app import run

if __name__ == "__main__":
    run()
