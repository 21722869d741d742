"""Options several commands share, and how the global ones given before a command meet its own.

typer reads options before the command only in the app's callback. So that `--connect`,
`--workspace` and `--no-color` may also follow the command, each command declares them again, and
the value given after the command wins over the one given before it.
"""

import os
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from vmctl.cli.console import Output

if TYPE_CHECKING:
    from collections.abc import Iterable

    from vmctl.errors import Problem
    from vmctl.spec.variables import VarInputs

PATHS_HELP = "Spec files or directories (all *.yaml/*.yml in them). Default: ./vmctl.yaml"
CONNECT_HELP = "libvirt URI. Also VMCTL_CONNECT; then the spec's connection; then LIBVIRT_DEFAULT_URI."
WORKSPACE_HELP = "Prefix domain names with NAME-, so one spec runs many times on a host. Also VMCTL_WORKSPACE."
NO_COLOR_HELP = "No colours (also NO_COLOR)."

Paths = Annotated[list[str] | None, typer.Argument(metavar="PATH", help=PATHS_HELP, show_default=False)]
SpecPaths = Annotated[
    list[str] | None,
    typer.Option("--spec", "-f", metavar="PATH", help="Spec file or directory (repeatable).", show_default=False),
]
Connect = Annotated[str | None, typer.Option("--connect", "-c", metavar="URI", help=CONNECT_HELP, show_default=False)]
Workspace = Annotated[
    str | None, typer.Option("--workspace", "-w", metavar="NAME", help=WORKSPACE_HELP, show_default=False)
]
NoColor = Annotated[bool, typer.Option("--no-color", help=NO_COLOR_HELP)]
Hosts = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        metavar="NAME",
        help="Only this host of the spec's hosts (repeatable). Default: every host.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]
ExpiresAfter = Annotated[
    str | None,
    typer.Option(
        "--expires-after",
        metavar="DURATION",
        help="What apply makes expires this long after it (e.g. 2h): `vmctl gc` then removes it. "
        "Overrides the spec's expires_after.",
        show_default=False,
    ),
]


class OutputFormat(StrEnum):
    """How a command prints its result."""

    TEXT = "text"
    JSON = "json"
    GITHUB = "github"  # spec problems as GitHub Actions annotations


Format = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        help="text, json, or github (problems as GitHub Actions annotations: ::error file=...,line=...).",
    ),
]
Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        metavar="GUEST",
        help="Only this guest (repeatable), with the images, networks and pools it needs: a partial plan.",
        show_default=False,
    ),
]
Vars = Annotated[
    list[str] | None,
    typer.Option(
        "--var",
        metavar="NAME=VALUE",
        help="A variable's value (repeatable; beats --var-file, VMCTL_VAR_NAME and the default).",
        show_default=False,
    ),
]
VarFiles = Annotated[
    list[str] | None,
    typer.Option(
        "--var-file",
        metavar="FILE",
        help="A YAML file of variable values (repeatable: later files win).",
        show_default=False,
    ),
]

# Before the command, the environment stands in for an option not given: a command's own option
# still wins over it, and the spec's connection comes after it.
GlobalConnect = Annotated[
    str | None,
    typer.Option(
        "--connect",
        "-c",
        metavar="URI",
        envvar="VMCTL_CONNECT",
        show_envvar=False,
        help=CONNECT_HELP,
        show_default=False,
    ),
]
GlobalWorkspace = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        metavar="NAME",
        envvar="VMCTL_WORKSPACE",
        show_envvar=False,
        help=WORKSPACE_HELP,
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """Where to connect, which workspace, and whether to colour: the same for every command."""

    connect: str | None = None
    workspace: str | None = None
    no_color: bool = False

    def uri(self, spec_connection: str | None) -> str:
        """--connect > VMCTL_CONNECT > the spec's connection > LIBVIRT_DEFAULT_URI > qemu:///system.

        `connect` holds VMCTL_CONNECT already when no --connect was given (see GlobalConnect).
        """
        return self.connect or spec_connection or os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"

    def output(self) -> Output:
        return Output(color=not self.no_color)


def global_options(
    ctx: typer.Context, connect: str | None = None, workspace: str | None = None, no_color: bool = False
) -> GlobalOptions:
    """The global options given after the command, each falling back to the one given before it."""
    before = ctx.find_object(GlobalOptions) or GlobalOptions()
    return GlobalOptions(
        connect=connect or before.connect,
        workspace=workspace or before.workspace or None,
        no_color=no_color or before.no_color,
    )


def var_inputs(given: list[str] | None, files: list[str] | None) -> "VarInputs":
    """Variables' values as given: --var, --var-file and the environment (VMCTL_VAR_NAME)."""
    from vmctl.spec.variables import ENV_PREFIX, VarInputs

    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    return VarInputs(tuple(given or ()), tuple(files or ()), env)


def github_annotations(problems: "Iterable[Problem]") -> str:
    """Spec problems as GitHub Actions workflow commands: each shows on its line of the pull request."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    lines = []
    for problem in problems:
        message = (f"{problem.path}: " if problem.path else "") + problem.message
        message += f" (hint: {problem.hint})" if problem.hint else ""
        where = problem.location
        place = f" file={prop(where.file)},line={where.line},col={where.column}" if where else ""
        title = f",title={prop(problem.path)}" if where and problem.path else ""
        lines.append(f"::error{place}{title}::{data(message)}\n")
    return "".join(lines)
