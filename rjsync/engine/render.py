"""Render a plan document (the versioned JSON form of ``Plan.to_json``) as text, JSON or markdown.

Renderers read only the document, never the planner's objects, so a saved plan, the HTTP
backend and a pull-request comment all show the same thing. All three are pure and
deterministic: identical documents give identical bytes.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from rjsync.markdown import (
    GITHUB_COMMENT_LIMIT,
    Markdown,
    cell,
    code,
    cut_markdown,
    inline,
    no_workflow_commands,
    table,
    terminal,
)

#: Hidden marker that starts every markdown plan (finds the comment to update on a PR).
MARKDOWN_MARKER = "<!-- rjsync-plan -->"

_SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
_COLOUR = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}
_VERB = {"create": "to create", "update": "to update", "replace": "to replace", "delete": "to delete"}


def safe(value: Any, clean: Callable[[str], str] = terminal) -> Any:
    """``value`` (a document or part of one) with ``clean`` applied to every string in it: what
    the input wrote (names, synopses, targets, patterns, errors) cannot print control
    characters or a workflow command."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {k: safe(v, clean) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe(v, clean) for v in value]
    return value


def to_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def change_counts(doc: Mapping[str, Any]) -> list[str]:
    """The plan's changes counted by action, those it has: ["3 to create", "1 to delete"]. The
    runtime environment counts as a create."""
    summary = doc["summary"]
    return [f"{summary[a] + (summary['environment'] if a == 'create' else 0)} {_VERB[a]}"
            for a in ("create", "update", "replace", "delete")
            if summary[a] + (summary["environment"] if a == "create" else 0)]


def summary_line(doc: Mapping[str, Any]) -> str:
    """"3 to create, 2 to update, 1 to delete." or "No changes.\""""
    summary = doc["summary"]
    parts = change_counts(doc)
    if not parts and summary["errors"]:
        text = "No changes from the runbooks that could be read."
    elif not parts:
        text = "No changes: the account matches the source."
    else:
        text = ", ".join(parts) + "."
    extra = []
    if summary["drift"]:
        extra.append(f"{summary['drift']} drifted")
    if summary["errors"]:
        extra.append(f"{summary['errors']} error{'s' if summary['errors'] != 1 else ''} in the catalog")
    missing = _missing_count(doc)
    if missing:
        extra.append(f"{missing} required grant{'s' if missing != 1 else ''} missing")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _missing_count(doc: Mapping[str, Any]) -> int:
    perm = doc.get("permissions")
    return (perm["counts"]["missing"] or 0) if perm and perm["status"] == "checked" else 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def permissions_headline(perm: Mapping[str, Any]) -> str:
    """What the permissions section says in one line (without "Permissions: ")."""
    counts = perm["counts"]
    if perm["status"] != "checked":
        needs = (f"the runbooks need {_plural(counts['needed'], 'grant')} ({counts['required']} required)"
                 if counts["needed"] else "the runbooks name no grants")
        return f"not checked ({perm['reason']}); {needs}."
    if not counts["needed"]:
        return "the runbooks name no grants."
    text = f"{_plural(counts['needed'], 'grant')} needed, {counts['held']} held; "
    text += f"{counts['missing']} required missing" if counts["missing"] else "no required grant missing"
    if counts["missing_optional"]:
        text += f", {counts['missing_optional']} optional missing"
    return text + "."


def _grant_rows(grouped: Mapping[str, Any]):
    """(where, grant name, entry) of a grouped grant list: app roles per resource, then roles
    (where: None)."""
    for group in grouped["app_roles"]:
        for entry in group["roles"]:
            yield group["resource"] or group["resource_id"], entry["name"], entry
    for entry in grouped["directory_roles"]:
        yield None, entry["name"], entry


def _some(names: list[str], shown: int = 5) -> list[str]:
    """At most ``shown`` of ``names``, then "and N more"."""
    return names[:shown] + ([f"and {len(names) - shown} more"] if len(names) > shown else [])


def _source_line(doc: Mapping[str, Any]) -> str:
    source = doc["source"]
    where = source.get("location") or "?"
    if source.get("ref"):
        where += f" @ {source['ref']}"
    if source.get("commit"):
        where += f" ({source['commit'][:12]}{', with uncommitted changes' if source.get('dirty') else ''})"
    return where


def _policy_line(doc: Mapping[str, Any]) -> str:
    policy = doc["policy"]
    runtime = "classic Windows PowerShell 5.1" if policy["runtime"].lower() == "classic" else policy["runtime"]
    parts = [f"prefix {policy['prefix']}", f"runtime {runtime}",
             f"modules {'managed' if policy['modules'] else 'not managed'}",
             f"at most {policy['max_deletions']} deletions"]
    if policy["exclude"]:
        parts.append("exclude " + ", ".join(policy["exclude"]))
    if policy["keep_drifted"]:
        parts.append("drift kept")
    return ", ".join(parts)


def _environment_detail(env: Mapping[str, Any]) -> str:
    """"PowerShell 7.4, default packages Az 12.3.0" (plans saved before default packages were
    planned: without them)."""
    detail = f"{env['language']} {env['version']}"
    if "default_packages" in env:
        packages = ", ".join(f"{n} {v}" for n, v in (env["default_packages"] or {}).items()) or "none"
        detail += f", default packages {packages}"
    return detail


def _module_versions(change: Mapping[str, Any]) -> str:
    before = (change.get("before") or {}).get("version")
    after = (change.get("after") or {}).get("version") or "newest"
    return f"{before} -> {after}" if before and change["action"] == "update" else after


# -- text ------------------------------------------------------------------------------------------


def to_text(doc: Mapping[str, Any], *, color: bool = False) -> str:
    """The plan for a terminal or a CI log: grouped, aligned, coloured when ``color``; every
    value from the input ``terminal``-safe."""
    doc = safe(doc)

    def style(text: str, **kw) -> str:
        if not color:
            return text
        import click

        return click.style(text, **kw)

    lines = [f"Source: {_source_line(doc)}", f"Target: {doc['target']}", f"Policy: {_policy_line(doc)}", ""]
    env = doc.get("environment")
    if env:
        lines += ["Runtime environment:",
                  "  " + style(f"+ {env['name']}", fg="green") + f"  create ({_environment_detail(env)})", ""]
    for kind, title in (("module", "Modules"), ("runbook", "Runbooks")):
        changes = [c for c in doc["changes"] if c["kind"] == kind]
        if not changes:
            continue
        width = max(len(c["name"]) for c in changes)
        lines.append(f"{title}:")
        for change in changes:
            symbol = _SYMBOL[change["action"]]
            head = style(f"{symbol:<3} {change['name']:<{width}}", fg=_COLOUR[change["action"]])
            detail = change["reason"]
            if kind == "module":
                detail = f"{_module_versions(change)}: {detail}"
            lines.append(f"  {head}  {detail}")
            for warning in change.get("warnings", ()):
                lines.append("      " + style(f"! {warning}", fg="yellow", bold=True))
        lines.append("")
    if doc["drift"]:
        lines.append("Drift (changed in the portal since the last sync):")
        for drift in doc["drift"]:
            verb = "overwritten" if drift["action"] == "overwrite" else "kept"
            lines.append(f"  {drift['name']}: {drift['reason']} ({verb})")
        lines.append("")
    if doc["skipped"]:
        lines.append("Left alone:")
        for skip in doc["skipped"]:
            lines.append(f"  {skip['name']}: {skip['reason']}")
        lines.append("")
    if doc.get("permissions"):
        lines += _permissions_text(doc["permissions"]) + [""]
    if doc["diagnostics"]:
        lines.append("Diagnostics:")
        for diag in doc["diagnostics"]:
            where = diag["path"] or "catalog"
            if diag["line"]:
                where += f":{diag['line']}"
            label = style(diag["severity"], fg="red" if diag["severity"] == "error" else "yellow")
            lines.append(f"  {label}: {where}: {diag['message']}")
        lines.append("")
    lines.append(style("Plan: ", bold=True) + summary_line(doc))
    return no_workflow_commands("\n".join(lines) + "\n")


def _permissions_text(perm: Mapping[str, Any]) -> list[str]:
    who = f" of the identity {perm['principal_id']}" if perm.get("principal_id") else ""
    lines = [f"Permissions{who}: {permissions_headline(perm)}"]
    sections = [("Missing (required):", perm["missing"])]
    sections += [(f"Missing (optional, for {group['feature'] or 'no named feature'}):", group)
                 for group in perm["optional"]]
    for title, grouped in sections:
        rows = list(_grant_rows(grouped))
        if not rows:
            continue
        lines.append(f"  {title}")
        last = None
        for where, name, entry in rows:
            heading = "Directory roles" if where is None else where
            if heading != last:
                lines.append(f"    {heading}:")
                last = heading
            lines.append(f"      {name}  ({', '.join(_some(entry['runbooks']))})")
            lines += [f"          why: {reason}" for reason in _some(entry["reasons"], 3)]
    if perm["manual"]:
        lines.append("  Manual (rjsync cannot check these):")
        lines += [f"    {step['text']}  ({', '.join(_some(step['runbooks']))})" for step in perm["manual"]]
    return lines


# -- markdown --------------------------------------------------------------------------------------


def to_markdown(doc: Mapping[str, Any], *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """The plan for a pull-request comment or job summary, always at most ``limit`` characters.

    Long tables are cut (with a note saying how many rows are not shown) until it fits. Every
    value from the input is escaped (``inline``, ``code``): none can end the table or open HTML.
    """
    doc = safe(doc)
    text = _markdown(doc, None)
    if len(text) <= limit:
        return text
    perm = doc.get("permissions") or {"missing": {"app_roles": [], "directory_roles": []}, "optional": [],
                                      "manual": []}
    grants = sum(1 for group in [perm["missing"], *perm["optional"]] for _row in _grant_rows(group))
    low, high = 0, max(len(doc["changes"]), len(doc["drift"]), len(doc["skipped"]), len(doc["diagnostics"]),
                       grants, len(perm["manual"]))
    while low < high:  # the most rows per table that still fits
        middle = (low + high + 1) // 2
        if len(_markdown(doc, middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    text = _markdown(doc, low)
    return cut_markdown(text, limit)


def _table(header: list[str], rows: list[list[str]], max_rows: int | None, what: str) -> list[str]:
    shown = rows if max_rows is None else rows[:max_rows]
    out = table(header, shown)
    if len(shown) < len(rows):
        out += ["", f"_… and {len(rows) - len(shown)} more {what} not shown here (comment size limit); "
                    "`rjsync plan --format json` lists them all._"]
    return out


def _details(title: str, body: list[str], open_: bool = False) -> list[str]:
    return [f"<details{' open' if open_ else ''}><summary>{title}</summary>", "", *body, "", "</details>", ""]


def _markdown(doc: Mapping[str, Any], max_rows: int | None) -> str:
    summary = doc["summary"]
    errored = summary["errors"] > 0
    icon = "❌" if errored else ("📝" if summary["has_changes"] else "✅")
    lines = [MARKDOWN_MARKER, f"### {icon} rjsync plan for {code(doc['target'], in_table=False)}", "",
             f"**{summary_line(doc)}**", "",
             f"Source: {code(_source_line(doc), in_table=False)}  ", f"Policy: {inline(_policy_line(doc))}", ""]
    lines += ["| | create | update | replace | delete |", "|---|---:|---:|---:|---:|"]
    for kind, title in (("runbook", "Runbooks"), ("module", "Modules")):
        counts = summary["by_kind"][kind]
        lines.append(f"| {title} | " + " | ".join(str(counts[a]) for a in ("create", "update", "replace", "delete")) + " |")
    if doc.get("environment"):
        env = doc["environment"]
        lines.append(f"| Runtime environment | 1 ({cell(env['name'] + ': ' + _environment_detail(env))}) | 0 | 0 | 0 |")
    lines.append("")

    warnings = [w for c in doc["changes"] for w in c.get("warnings", ())]
    if summary.get("over_deletion_limit"):
        warnings.insert(0, f"{summary['delete']} deletions exceed the limit of {doc['policy']['max_deletions']}: "
                           "apply deletes none of them without --max-deletions")
    if warnings:
        lines += ["> [!WARNING]"] + [f"> - {cell(w)}" for w in (warnings if max_rows is None else warnings[:max_rows])]
        if max_rows is not None and len(warnings) > max_rows:
            lines.append(f"> - … and {len(warnings) - max_rows} more warnings")
        lines.append("")

    for kind, title in (("runbook", "Runbook changes"), ("module", "Module changes")):
        changes = [c for c in doc["changes"] if c["kind"] == kind]
        if not changes:
            continue
        if kind == "module":
            rows = [[c["action"], code(c["name"]), _module_versions(c), c["reason"]] for c in changes]
            table = _table(["action", "module", "version", "reason"], rows, max_rows, "module changes")
        else:
            rows = [[c["action"], code(c["name"]), c["reason"]] for c in changes]
            table = _table(["action", "runbook", "reason"], rows, max_rows, "runbook changes")
        lines += _details(f"{title} ({len(changes)})", table)
    if doc["drift"]:
        rows = [[code(d["name"]), d["reason"], "overwritten" if d["action"] == "overwrite" else "kept"]
                for d in doc["drift"]]
        lines += _details(f"Drift: changed in the portal ({len(rows)})",
                          _table(["runbook", "what changed", "plan"], rows, max_rows, "drifted runbooks"), open_=True)
    if doc["skipped"]:
        rows = [[s["kind"], code(s["name"]), s["reason"]] for s in doc["skipped"]]
        lines += _details(f"Left alone ({len(rows)})", _table(["kind", "name", "why"], rows, max_rows, "entries"))
    if doc.get("permissions"):
        lines += _permissions_markdown(doc["permissions"], max_rows)
    if doc["diagnostics"]:
        rows = [[d["severity"], code(f"{d['path'] or 'catalog'}{':' + str(d['line']) if d['line'] else ''}"), d["message"]]
                for d in doc["diagnostics"]]
        lines += _details(f"Diagnostics ({len(rows)})", _table(["severity", "where", "message"], rows, max_rows,
                                                               "diagnostics"), open_=errored)
    return "\n".join(lines).rstrip("\n") + "\n"


def _permissions_markdown(perm: Mapping[str, Any], max_rows: int | None) -> list[str]:
    counts = perm["counts"]
    if not counts["needed"] and not perm["manual"]:
        return [f"Permissions: {inline(permissions_headline(perm))}", ""]

    def runbooks(names: list[str]) -> Markdown:
        return Markdown(", ".join(code(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else ""))

    body: list[str] = []
    missing = [[where or "directory role", code(name), runbooks(e["runbooks"]), "; ".join(e["reasons"])]
               for where, name, e in _grant_rows(perm["missing"])]
    if missing:
        body += _table(["resource", "missing grant", "needed by", "why"], missing, max_rows, "missing grants") + [""]
    optional = [[group["feature"] or "(no named feature)", where or "directory role", code(name), runbooks(e["runbooks"]),
                 "; ".join(e["reasons"])] for group in perm["optional"] for where, name, e in _grant_rows(group)]
    if optional:
        body += ["Optional: the runbooks run without these, except for the feature named.", ""]
        body += _table(["feature", "resource", "missing grant", "needed by", "why"], optional, max_rows,
                       "optional grants") + [""]
    if perm["manual"]:
        body += ["Manual steps: rjsync cannot check these.", ""]
        body += _table(["step", "needed by"], [[m["text"], runbooks(m["runbooks"])] for m in perm["manual"]],
                       max_rows, "manual steps") + [""]
    if perm["status"] == "checked" and perm.get("principal_id"):
        body.insert(0, f"Identity: {code(perm['principal_id'], in_table=False)}; held grants are counted, not listed.\n")
    return _details(f"Permissions: {inline(permissions_headline(perm))}", body[:-1] if body and body[-1] == "" else body,
                    open_=bool(counts["missing"]) and perm["status"] == "checked")


RENDERERS: dict[str, Callable[..., str]] = {"text": to_text, "json": to_json, "markdown": to_markdown}
