"""``rjsync plan`` and ``rjsync apply``: what they print, ask and exit with.

The work is the pipeline's (``rjsync.sync``); this module shows it: the plan on stdout, a
progress bar on a terminal (one line per finished step in a CI log), notes about waits the
service imposes, the report at the end, and the exit code. ``rjsync.commands.fleet`` prints a
fleet's accounts with the same pieces.
"""

from __future__ import annotations

import os
import sys
import threading

import click

from rjsync.engine import render
from rjsync.engine.apply import DONE, Outcome, steps
from rjsync.engine.plan import Plan
from rjsync.engine.saved import save_plan
from rjsync.errors import RjsyncError
from rjsync.markdown import terminal
from rjsync.settings import SyncSettings
from rjsync.sync import (
    AccountOpener,
    ApplyEvents,
    ApplyResult,
    Prepared,
    apply,
    catalog_errors,
    default_opener,
    permissions_problem,
    prepare,
)


def run_plan(settings: SyncSettings, *, fmt: str = "text", out: str | None = None,
             detailed_exitcode: bool = False, opener: AccountOpener = default_opener) -> int:
    with prepare(settings, opener=opener) as prepared:
        plan = prepared.plan
    doc = plan.to_json()
    if fmt == "text":
        click.echo(render.to_text(doc, color=color(sys.stdout)), nl=False)
    else:
        click.echo(render.RENDERERS[fmt](doc), nl=False)
    if out:
        save_plan(plan, out)
        if fmt == "text":
            click.echo(f"Saved the plan to {out}; apply it with: rjsync apply {out}")
    problem = permissions_problem(plan) if settings.require_permissions else None
    if plan.errored:
        _catalog_errors(plan)
    if problem:
        click.echo(f"Error: {problem}", err=True)
    if plan.errored or problem:
        return 1
    return 2 if detailed_exitcode and plan.has_changes else 0


def run_apply(prepared: Prepared, *, auto_approve: bool = False, max_deletions: int | None = None) -> int:
    """Show the plan, confirm, apply, report; the exit code. Closes the account."""
    with prepared:
        return apply_and_report(prepared, auto_approve=auto_approve, max_deletions=max_deletions)[0]


def apply_and_report(prepared: Prepared, *, auto_approve: bool = False, max_deletions: int | None = None,
                     out=None, err=None) -> tuple[int, ApplyResult | None]:
    """Show the plan, confirm, apply; the exit code and the result (None when nothing was applied).

    The plan and the report go to ``out``, progress and problems to ``err`` (default: stdout and
    stderr); a fleet gives each account its own.
    """
    plan = prepared.plan
    click.echo(render.to_text(plan.to_json(), color=color(out or sys.stdout)), nl=False, file=out)
    if prepared.settings.require_permissions and (problem := permissions_problem(plan)):
        click.echo(f"Error: Not applying: {problem}", err=True, file=err)
        return 1, None
    if not plan.has_changes:
        if plan.errored:
            _catalog_errors(plan, err)
            return 1, None
        return 0, None
    if not auto_approve:
        if not sys.stdin.isatty():
            raise RjsyncError("Not applying: confirmation needs a terminal. Review the plan above and "
                              "pass --auto-approve to apply without asking.")
        if not click.confirm(f"\nApply these changes to {plan.target}?", default=False, err=True):
            click.echo("Nothing applied.", err=True)
            return 1, None
    progress = Progress(steps(plan), err or sys.stderr)
    try:
        result = apply(prepared, max_deletions=max_deletions,
                       events=ApplyEvents(outcome=progress.outcome, note=progress.note))
    finally:
        progress.close()
    print_report(result, out, err)
    return (0 if result.ok else 1), result


class Progress:
    """A progress bar on a terminal; one line per finished step otherwise (CI logs)."""

    def __init__(self, total: int, stream):
        self.total, self.stream = total, stream
        self.done = 0
        self._lock = threading.Lock()
        self._bar = None
        if color(stream) and total:
            self._bar = click.progressbar(length=total, label="Applying", file=stream, show_pos=True,
                                          show_eta=True, item_show_func=lambda item: item)
            self._bar.__enter__()

    def outcome(self, outcome: Outcome) -> None:
        with self._lock:
            self.done += 1
            if self._bar is not None:
                if outcome.status != DONE:
                    self._bar.render_finish()
                    click.echo(outcome_line(outcome), file=self.stream)
                self._bar.update(1, terminal(outcome.name))
            else:
                click.echo(f"[{self.done}/{self.total}] {outcome_line(outcome)}", file=self.stream)

    def note(self, text: str) -> None:
        """A line about a wait the service imposes, between the steps (the bar goes on after it)."""
        with self._lock:
            if self._bar is not None:
                self._bar.render_finish()
            click.echo(f"note: {terminal(text)}", file=self.stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def outcome_line(outcome: Outcome) -> str:
    return terminal(outcome.line())


def print_report(result: ApplyResult, out=None, err=None) -> None:
    problems = result.problems
    if problems:
        click.echo("\nNot done:", err=True, file=err)
        for outcome in problems:
            click.echo(f"  {outcome_line(outcome)}", err=True, file=err)
    verdict = "Apply complete" if not problems else "Apply incomplete"
    click.echo(f"\n{verdict} in {result.seconds:.1f} s: {result.done} done, {result.failed} failed, "
               f"{result.skipped} skipped.", file=out)
    if result.plan.errored:
        _catalog_errors(result.plan, err)
    if problems:
        click.echo("Run the same command again to finish: what is done is not repeated.", file=out)


def _catalog_errors(plan: Plan, err=None) -> None:
    click.echo(f"Error: {catalog_errors(plan)}", err=True, file=err)


def color(stream) -> bool:
    """Whether ``stream`` gets colour and a progress bar: a terminal, and NO_COLOR not set."""
    try:
        return stream.isatty() and "NO_COLOR" not in os.environ
    except (AttributeError, ValueError):
        return False
