"""Job schedules in the plan: what a sync does to the schedules that start the runbooks it
changes (pure). The upstream's CHANGELOG asks admins to check this by hand; the plan does it.

A job schedule links a runbook, a schedule and the parameter values every run gets. A new
version of the runbook that drops or renames a parameter a schedule passes, or adds a mandatory
one (without a default) that it does not pass, makes every scheduled run fail at its first
line; deleting or replacing (delete and create) a runbook removes its job schedules. Each case
is a warning on the change, naming the schedule. Parameter names compare as PowerShell
compares them: without regard to case.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from rjsync.accounts.base import LiveJobSchedule
from rjsync.catalog.model import Catalog, Runbook
from rjsync.engine.plan import DELETE, REPLACE, RUNBOOK, UPDATE, Change, Plan


def scheduled_changes(plan: Plan) -> list[str]:
    """The runbooks whose job schedules the plan must look at: deleted, replaced, or updated in
    their content (only new content can change the parameters)."""
    return [c.name for c in plan.changes if c.kind == RUNBOOK and (
        c.action in (DELETE, REPLACE) or (c.action == UPDATE and "content" in c.aspects))]


def with_schedule_warnings(plan: Plan, catalog: Catalog, schedules: Iterable[LiveJobSchedule]) -> Plan:
    """``plan`` with a warning on each change that breaks or removes one of ``schedules``."""
    by_runbook: dict[str, list[LiveJobSchedule]] = {}
    for schedule in schedules:
        by_runbook.setdefault(schedule.runbook.lower(), []).append(schedule)
    if not by_runbook:
        return plan
    runbooks = {r.name.lower(): r for r in catalog.runbooks}
    changes = []
    for change in plan.changes:
        found = by_runbook.get(change.name.lower()) if change.kind == RUNBOOK else None
        warnings = _warnings(change, runbooks.get(change.name.lower()), found) if found else []
        changes.append(dataclasses.replace(change, warnings=change.warnings + tuple(warnings)) if warnings else change)
    return dataclasses.replace(plan, changes=tuple(changes))


def _warnings(change: Change, runbook: Runbook | None, schedules: list[LiveJobSchedule]) -> list[str]:
    out = []
    for schedule in sorted(schedules, key=lambda s: (s.schedule.lower(), s.job_schedule_id)):
        name = f"job schedule '{schedule.schedule}'"
        if change.action == DELETE:
            out.append(f"{name} starts this runbook: deleting it removes the schedule too")
        elif change.action == REPLACE:
            out.append(f"{name} is lost with the delete and create: link it to the runbook again afterwards")
        elif runbook is not None and change.action == UPDATE and "content" in change.aspects:
            out.extend(_parameter_warnings(name, runbook, schedule))
    return out


def _parameter_warnings(name: str, runbook: Runbook, schedule: LiveJobSchedule) -> list[str]:
    declared = {p.name.lower() for p in runbook.parameters}
    passed = {k.lower() for k in schedule.parameters}
    dropped = sorted((k for k in schedule.parameters if k.lower() not in declared), key=str.lower)
    required = [p.name for p in runbook.parameters
                if p.mandatory and p.default is None and p.default_expression is None and p.name.lower() not in passed]
    out = []
    if dropped:
        out.append(f"{name} passes {_names(dropped)}, which the new version no longer declares (dropped or "
                   "renamed): its runs fail until the schedule's parameters are changed")
    if required:
        out.append(f"{name} does not pass {_names(required)}, which the new version requires: its runs fail "
                   "until the schedule gives a value")
    return out


def _names(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
