"""The `vmctl` program, also as `python -m vmctl`.

Starting allocates tens of thousands of objects and frees almost none, so Python's cycle collector,
which runs every 700 allocations, only walks the same young objects again and again: dozens of
passes before the first command line is read. It stays off until the modules are loaded; the CLI
then freezes what they made and turns it back on with thresholds fit for vmctl's work.
"""

import gc
from typing import NoReturn


def run() -> NoReturn:
    gc.disable()
    from vmctl.cli.app import run as run_command

    run_command()


if __name__ == "__main__":
    run()
