"""``rjsync permissions grant``: what the identity lacks, shown as a plan, confirmed, granted."""

from __future__ import annotations

import sys

import click

from rjsync.accounts.graph import ALREADY_ASSIGNED, GRANTED
from rjsync.catalog.permissions import APP_ROLE
from rjsync.engine.permissions import MissingGrant
from rjsync.errors import RjsyncError
from rjsync.grants import FAILED, GrantPlan, GrantResult, grant, open_granter, plan_grants
from rjsync.markdown import terminal
from rjsync.settings import SyncSettings

_SHOWN = {GRANTED: "granted", ALREADY_ASSIGNED: "already assigned", FAILED: "failed"}
_RUNBOOKS_SHOWN = 3


def run_grant(settings: SyncSettings, *, include_optional: bool = False, auto_approve: bool = False) -> int:
    """Plan, show, confirm, grant, report; the exit code (1 when a grant failed or was not given)."""
    plan = plan_grants(settings, include_optional=include_optional)
    show_plan(plan, include_optional)
    if not plan.grants:
        return 0
    if not auto_approve:
        if not sys.stdin.isatty():
            raise RjsyncError("Not granting: confirmation needs a terminal. Review the grants above and pass "
                              "--auto-approve to grant without asking.")
        if not click.confirm(f"\nGive {'these' if len(plan.grants) != 1 else 'this'} "
                             f"{len(plan.grants)} grant{'s' if len(plan.grants) != 1 else ''}?", default=False, err=True):
            click.echo("Nothing granted.", err=True)
            return 1
    granter = open_granter(settings)
    try:
        results = grant(plan, granter, on_result=show_result)
    finally:
        granter.close()
    counts = {status: sum(1 for r in results if r.status == status) for status in (GRANTED, ALREADY_ASSIGNED, FAILED)}
    click.echo(f"\nGranted {counts[GRANTED]}, already assigned {counts[ALREADY_ASSIGNED]}, failed {counts[FAILED]}.")
    return 1 if counts[FAILED] else 0


def show_plan(plan: GrantPlan, include_optional: bool) -> None:
    report = plan.report
    who = f"identity {terminal(plan.principal_id)}" if plan.principal_id else "its identity"
    click.echo(f"Permissions of {terminal(plan.target)} ({who}): {report.needed} grants needed, {report.held} held, "
               f"{len(report.missing)} required missing, {report.missing_optional} optional missing.")
    if not plan.grants:
        count = report.missing_optional
        more = ("" if include_optional or not count else
                f" {count} optional grant{'s are' if count != 1 else ' is'} missing: --include-optional "
                f"grants {'them' if count != 1 else 'it'} too.")
        click.echo(f"Nothing to grant: the identity holds every required grant.{more}")
        return
    click.echo("\nGrants to give:")
    for item in plan.grants:
        runbooks = ", ".join(terminal(r) for r in item.runbooks[:_RUNBOOKS_SHOWN])
        if len(item.runbooks) > _RUNBOOKS_SHOWN:
            runbooks += f" and {len(item.runbooks) - _RUNBOOKS_SHOWN} more"
        feature = f" [optional: {terminal(item.feature)}]" if item.feature else ""
        click.echo(f"  + {describe(item)}{feature}  (for {runbooks})")


def show_result(result: GrantResult) -> None:
    message = f": {terminal(result.message)}" if result.message else ""
    click.echo(f"  {_SHOWN[result.status]:<16} {describe(result.grant)}{message}")


def describe(item: MissingGrant) -> str:
    if item.kind == APP_ROLE:
        return f"app role {terminal(item.value)} of {terminal(item.resource)}"
    return f"directory role {terminal(item.value)}"
