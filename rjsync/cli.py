"""Command-line entry point: parses arguments and dispatches to ``rjsync.commands``.

This is the only place that turns an ``RjsyncError`` into a message and an exit code.
"""

from __future__ import annotations

import sys

import click

from rjsync import __version__
from rjsync.errors import RjsyncError


class _Group(click.Group):
    """A group whose commands report ``RjsyncError`` as one clear line and exit 1."""

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except RjsyncError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rjsync")
def cli() -> None:
    """Keep Azure Automation accounts in sync with a Git repository of PowerShell runbooks.

    \b
    Runbooks live in the RealmJoin layout: <context>/<category>/<name>.ps1, e.g.
    user/security/reset-password.ps1 becomes the runbook rjgit-user_security_reset-password.
    Only runbooks named rjgit-* are ever written; every other runbook is the customer's.
    """


@cli.command("catalog")
@click.argument("source")
@click.option("--ref", metavar="REF", help="Branch, tag or commit to read when SOURCE is a git repository.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Output format: a readable table, or the JSON contract of design.md.",
)
def catalog_cmd(source: str, ref: str | None, fmt: str) -> None:
    """List every runbook SOURCE holds, as PowerShell and the portal see it.

    SOURCE is a folder in the upstream layout, or a git repository (URL or local path);
    with --ref the repository is cloned into the cache ($RJSYNC_CACHE, default
    ~/.cache/rjsync) and read at that branch, tag or commit.

    Exits 1 when the catalog has errors (e.g. two scripts that map to one runbook name).
    """
    from rjsync.commands.catalog import run

    sys.exit(run(source, ref=ref, fmt=fmt))


def main() -> None:
    cli(prog_name="rjsync")
