"""Render a fleet document (``FleetReport.to_json`` of ``rjsync.fleet``) as text or markdown.

A fleet's output is each account's section (its plan, or its apply output, or its error), a
summary table of every account, and a verdict; its markdown form is one comment holding the
summary table and each account's plan, cut to fit GitHub's limit. Pure like ``render``, whose
plan renderers and markdown pieces it reuses: it reads only the document.
"""

from __future__ import annotations

from typing import Any, Mapping

from rjsync.engine import render
from rjsync.fleet import APPLIED, APPLY, CHANGES, ERROR, IN_SYNC, INCOMPLETE, NO_CHANGES, PLAN
from rjsync.markdown import (
    GITHUB_COMMENT_LIMIT,
    code,
    cut_markdown,
    inline,
    no_workflow_commands,
    table,
)

_ICON = {NO_CHANGES: "✅", IN_SYNC: "✅", APPLIED: "✅", CHANGES: "📝", INCOMPLETE: "⚠️", ERROR: "❌"}
_TITLE = {PLAN: "plan", APPLY: "apply"}


def changes_cell(plan: Mapping[str, Any] | None) -> str:
    """A plan's changes in a few words: "16 to create, 1 to delete", "none", or "-" (no plan)."""
    if plan is None:
        return "-"
    parts = render.change_counts(plan)
    if plan["summary"]["drift"]:
        parts.append(f"{plan['summary']['drift']} drifted")
    return ", ".join(parts) or "none"


def status_cell(account: Mapping[str, Any]) -> str:
    applied = account.get("applied")
    if applied and account["status"] in (APPLIED, INCOMPLETE):
        if account["status"] == APPLIED:
            return f"applied ({applied['done']} done)"
        return (f"incomplete ({applied['done']} done, {applied['failed']} failed, "
                f"{applied['skipped']} skipped)")
    return account["status"]


def section_text(account: Mapping[str, Any], color: bool, body: str | None = None) -> str:
    """One account's part of the text output: a header line naming it, then its plan (or
    ``body``, its apply output), or its error. ``account`` is one of the fleet document's."""
    account = render.safe(account)
    lines = [f"=== {account['name']} ({account['manifest']}) ==="]
    text = body if body is not None else (render.to_text(account["plan"], color=color) if account["plan"] else "")
    if account["error"] and (account["plan"] is None or account["status"] == ERROR):
        text += f"Error: {account['error']}\n"
    return no_workflow_commands("\n".join(lines) + "\n" + text + "\n")


def fleet_verdict(doc: Mapping[str, Any], command: str) -> str:
    """"20 accounts: 18 with changes, 1 without changes, 1 failed.\""""
    s = doc["summary"]
    total = f"{s['accounts']} account{'s' if s['accounts'] != 1 else ''}"
    if command == PLAN:
        parts = [f"{s['changes']} with changes", f"{s['no_changes']} without changes"]
    else:
        parts = [f"{s['applied']} applied", f"{s['in_sync']} already in sync", f"{s['incomplete']} incomplete"]
    return f"{total}: {', '.join(parts)}, {s['errors']} failed."


def fleet_summary_text(doc: Mapping[str, Any], *, command: str, folder: str) -> str:
    """The summary table that ends a fleet's text output, the errors under it, and a verdict."""
    doc, folder = render.safe(doc), render.terminal(folder)
    header = ["ACCOUNT", "TARGET", "CHANGES", "STATUS"]
    rows = [[a["name"], a["target"] or "-", changes_cell(a["plan"]), status_cell(a)] for a in doc["accounts"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [f"Summary of {_TITLE[command]} for {folder}:"]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(f"{text:<{w}}" for text, w in zip(row, widths)) + "  " + row[-1])
    errors = [a for a in doc["accounts"] if a["error"]]
    if errors:
        lines += ["", "Errors:"] + [f"  {a['name']}: {a['error']}" for a in errors]
    lines += ["", f"Fleet {_TITLE[command]}: {fleet_verdict(doc, command)}"]
    return no_workflow_commands("\n".join(lines) + "\n")


#: Below this many characters (about 25 table rows) an account's plan is left out rather than cut further.
MIN_SECTION = 2500
_LEFT_OUT = ("\n_The plans of {n} accounts are not shown here (comment size limit); "
             "`rjsync plan --manifest {folder}/NAME.yaml` shows one in full._\n")


def fleet_to_markdown(doc: Mapping[str, Any], *, folder: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """The fleet's plan for a pull-request comment or job summary, at most ``limit`` characters:
    a summary table of every account, its errors, then each account's plan under a header.

    When everything does not fit, each plan gets a fair share of the room left (``to_markdown``
    cuts its tables to fit), and when even that is too little, accounts without changes and then
    the last ones by name are left out, with a note saying how many.
    """
    accounts = list(doc["accounts"])
    head = _markdown_head(doc, folder, accounts, None)
    if len(head) > limit // 2:  # hundreds of accounts: show the rows that matter most
        low, high = 0, len(accounts)
        while low < high:
            middle = (low + high + 1) // 2
            if len(_markdown_head(doc, folder, accounts, middle)) <= limit // 2:
                low = middle
            else:
                high = middle - 1
        head = _markdown_head(doc, folder, accounts, low)
    with_plan = [a for a in accounts if a["plan"] is not None]
    full = {a["name"]: _markdown_section(a, render.to_markdown(a["plan"], limit=10**9)) for a in with_plan}
    note = len(_LEFT_OUT.format(n=len(with_plan), folder=folder))
    budget = limit - len(head) - note
    # which accounts are shown: most interesting first (errors, changes, then by name)
    order = sorted(with_plan, key=lambda a: (a["status"] in (NO_CHANGES, IN_SYNC), a["name"]))
    shown, shares = [], {}
    for count in range(len(order), -1, -1):
        shares = _fair_shares([(a["name"], len(full[a["name"]])) for a in order[:count]], budget)
        if all(shares[a["name"]] >= min(MIN_SECTION, len(full[a["name"]])) for a in order[:count]):
            shown = order[:count]
            break
    names = {a["name"] for a in shown}
    parts = [head]
    for account in with_plan:
        if account["name"] not in names:
            continue
        share, text = shares[account["name"]], full[account["name"]]
        if len(text) > share:
            heading = _markdown_section(account, "")
            text = _markdown_section(account, render.to_markdown(account["plan"], limit=share - len(heading)))
        parts.append(text)
    if len(shown) < len(with_plan):
        parts.append(_LEFT_OUT.format(n=len(with_plan) - len(shown), folder=folder))
    return cut_markdown("".join(parts), limit)


def _fair_shares(lengths: list[tuple[str, int]], budget: int) -> dict[str, int]:
    """Split ``budget`` so short sections get all they need and long ones an equal share of the rest."""
    shares: dict[str, int] = {}
    remaining = max(0, budget)
    ordered = sorted(lengths, key=lambda item: item[1])
    for index, (name, length) in enumerate(ordered):
        share = min(length, remaining // (len(ordered) - index))
        shares[name] = share
        remaining -= share
    return shares


def _markdown_head(doc: Mapping[str, Any], folder: str, accounts: list, max_rows: int | None) -> str:
    summary = doc["summary"]
    icon = "❌" if summary["errors"] else ("📝" if summary.get("changes") else "✅")
    lines = [render.MARKDOWN_MARKER, f"## {icon} rjsync plan for {code(folder)}", "",
             f"**{fleet_verdict(doc, PLAN)}**", ""]
    rows = accounts
    if max_rows is not None:
        rank = {ERROR: 0, INCOMPLETE: 0, CHANGES: 1}
        rows = sorted(accounts, key=lambda a: (rank.get(a["status"], 2), a["name"]))[:max_rows]
        rows.sort(key=lambda a: a["name"])
    lines += table(["", "account", "target", "changes", "status"],
                   [[_ICON[a["status"]], code(a["name"]), code(a["target"]) if a["target"] else "-",
                     changes_cell(a["plan"]), status_cell(a)] for a in rows])
    if len(rows) < len(accounts):
        lines += ["", f"_… and {len(accounts) - len(rows)} more accounts without changes or errors not "
                      "listed (comment size limit)._"]
    errors = [a for a in rows if a["error"]]
    if errors:
        lines += ["", "**Errors**", ""] + [f"- {code(a['name'])}: {inline(a['error'])}" for a in errors]
    return "\n".join(lines) + "\n\n"


def _markdown_section(account: Mapping[str, Any], plan_markdown: str) -> str:
    body = plan_markdown.replace(render.MARKDOWN_MARKER + "\n", "", 1)
    return f"## {code(account['name'])}\n\n{body}\n"
