"""``rjsync plan|apply --manifest FOLDER``: what a fleet's run prints and exits with.

The work is ``rjsync.fleet``'s. Text output: each account's section (its plan, or its apply
output) in name order as soon as it and the accounts before it are done, then one summary
table; an apply's progress lines go to stderr as they happen, each prefixed with the account's
name. JSON and markdown: one document at the end.
"""

from __future__ import annotations

import io
import sys
import threading

import click

from rjsync.commands.sync import Progress, color, print_report
from rjsync.engine import render
from rjsync.engine.apply import steps
from rjsync.engine.plan import Plan
from rjsync.engine.render_fleet import fleet_summary_text, fleet_to_markdown, section_text
from rjsync.errors import RjsyncError
from rjsync.fleet import (
    APPLY,
    ERROR,
    PLAN,
    AccountResult,
    Fleet,
    FleetEntry,
    FleetReport,
    SourceCache,
    apply_account,
    guarded,
    plan_account,
    run_accounts,
)
from rjsync.sync import AccountOpener, ApplyEvents, default_opener


def run_fleet_plan(fleet: Fleet, *, fmt: str = "text", detailed_exitcode: bool = False,
                   opener: AccountOpener = default_opener, cache: SourceCache | None = None) -> int:
    """Plan every account of ``fleet``; print each account's plan (text: as it is ready, in
    name order) and one summary; return the worst exit code."""
    cache = cache or SourceCache()
    use_color = color(sys.stdout)

    def plan_one(entry: FleetEntry) -> AccountResult:
        result = guarded(entry, lambda: plan_account(entry, cache, opener, detailed_exitcode=detailed_exitcode))
        if fmt == "text":
            result.output = section_text(result.to_json(), use_color)
        return result

    report = run_accounts(fleet, PLAN, plan_one, on_result=_echo if fmt == "text" else None)
    doc = report.to_json()
    if fmt == "json":
        click.echo(render.to_json(doc), nl=False)
    elif fmt == "markdown":
        click.echo(fleet_to_markdown(doc, folder=fleet.folder), nl=False)
    else:
        click.echo(fleet_summary_text(doc, command=PLAN, folder=fleet.folder), nl=False)
    _fleet_error(report)
    return report.exit_code


def run_fleet_apply(fleet: Fleet, *, auto_approve: bool = False, max_deletions: int | None = None,
                    opener: AccountOpener = default_opener, cache: SourceCache | None = None) -> int:
    """Plan and apply every account of ``fleet``. Each account's plan and apply report are
    printed as a section (in name order, as they finish); progress lines go to stderr as they
    happen, each prefixed with the account's name. Needs ``auto_approve``."""
    if not auto_approve:
        raise RjsyncError(f"Not applying: a folder of manifests applies to {len(fleet.entries)} account"
                          f"{'s' if len(fleet.entries) != 1 else ''} without asking each. Review "
                          f"'rjsync plan --manifest {fleet.folder}' and pass --auto-approve.")
    cache = cache or SourceCache()
    stderr = sys.stderr
    lock = threading.Lock()
    use_color = color(sys.stdout)

    def apply_one(entry: FleetEntry) -> AccountResult:
        out = io.StringIO()
        err = _Prefixed(f"{entry.name}: ", stderr, lock)
        progress: list[Progress] = []

        def planned(plan: Plan) -> None:
            click.echo(render.to_text(plan.to_json(), color=False), nl=False, file=out)
            if plan.has_changes:
                progress.append(Progress(steps(plan), err))

        def outcome(o) -> None:
            progress[0].outcome(o)

        def note(text: str) -> None:
            progress[0].note(text)

        try:
            result = guarded(entry, lambda: apply_account(
                entry, cache, opener, max_deletions=max_deletions, on_plan=planned,
                events=ApplyEvents(outcome=outcome, note=note)))
            if result.result is not None:
                print_report(result.result, out, err)
            elif result.plan is not None and result.status == ERROR:  # a catalog with errors
                click.echo(f"Error: {result.error}", file=err)
        finally:
            err.finish()
        result.output = section_text(result.to_json(), use_color, body=out.getvalue())
        return result

    report = run_accounts(fleet, APPLY, apply_one, on_result=_echo)
    click.echo(fleet_summary_text(report.to_json(), command=APPLY, folder=fleet.folder), nl=False)
    _fleet_error(report)
    return report.exit_code


def _echo(result: AccountResult) -> None:
    click.echo(result.output, nl=False)


def _fleet_error(report: FleetReport) -> None:
    failed = [a for a in report.accounts if a.exit_code == 1]
    if failed:
        total = len(report.accounts)
        click.echo(f"Error: {len(failed)} of {total} account{'s' if total != 1 else ''} "
                   f"{'has' if len(failed) == 1 else 'have'} errors (see the summary).", err=True)


class _Prefixed(io.TextIOBase):
    """A text stream that writes each complete line to ``stream`` as ``prefix + line``, under
    ``lock`` so lines of accounts running at once never interleave mid-line."""

    def __init__(self, prefix: str, stream, lock: threading.Lock) -> None:
        self.prefix, self.stream, self.lock = prefix, stream, lock
        self._partial = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            with self.lock:
                self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
                self.stream.flush()
        return len(text)

    def flush(self) -> None:
        with self.lock:
            self.stream.flush()

    def finish(self) -> None:
        """Write out a last line that has no newline."""
        if self._partial:
            self.write("\n")
