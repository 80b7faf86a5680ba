"""Render a catalog as text (a table grouped by context and category) or JSON. Pure."""

from __future__ import annotations

import json
from collections import defaultdict

from rjsync.catalog.model import Catalog
from rjsync.catalog.permissions import permission_union
from rjsync.markdown import no_workflow_commands, terminal


def to_json(catalog: Catalog) -> str:
    """The JSON contract of design.md, with ``permissions``: the union of what the runbooks
    need, required and optional apart (``permission_union``); byte-identical for identical
    catalogs."""
    data = catalog.to_json()
    data = {**{k: v for k, v in data.items() if k != "diagnostics"}, "permissions": permission_union(catalog.runbooks),
            "diagnostics": data["diagnostics"]}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _source_line(catalog: Catalog) -> str:
    source = catalog.source
    parts = [f"Source: {terminal(source.location)}"]
    if source.ref:
        parts.append(f"@ {terminal(source.ref)}")
    parts.append(f"(commit {source.commit[:12]}{', uncommitted changes' if source.dirty else ''})"
                 if source.commit else "(not in a git repository)")
    return " ".join(parts)


def _clip(text: str | None, width: int) -> str:
    text = " ".join(terminal(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def to_text(catalog: Catalog) -> str:
    lines = [_source_line(catalog)]
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for runbook in catalog.runbooks:
        groups[(runbook.context, runbook.category)].append(runbook)
    name_width = max((len(r.name) for r in catalog.runbooks), default=10)
    for (context, category), runbooks in sorted(groups.items(),
                                                key=lambda kv: (kv[0][0], kv[0][1].lower())):
        lines.append("")
        lines.append(f"{terminal(context)} / {terminal(category)}")
        for runbook in runbooks:
            flags = " [scheduled]" if runbook.schedulable else ""
            count = len(runbook.parameters)
            params = f"{count} param{'s' if count != 1 else ' '}"
            lines.append(f"  {terminal(runbook.name):<{name_width}}  {params:>9}  "
                         f"{_clip(runbook.synopsis, 60)}{flags}")
    if catalog.modules:
        lines.append("")
        lines.append("Modules")
        width = max(len(m.name) for m in catalog.modules)
        for module in catalog.modules:
            version = f">= {module.minimum_version}" if module.minimum_version else "any version"
            if module.required_versions:
                version = f"= {', '.join(module.required_versions)}"
            used = len(module.runbooks)
            lines.append(f"  {terminal(module.name):<{width}}  {terminal(version):<14}  "
                         f"{used} runbook{'s' if used != 1 else ''}")
    if catalog.diagnostics:
        lines.append("")
        lines.append("Diagnostics")
        for d in catalog.diagnostics:
            where = terminal(d.path or "catalog")
            if d.line:
                where += f":{d.line}"
            lines.append(f"  {d.severity:<7} {where}: {terminal(d.message)}")
    lines.append("")
    errors, warnings = len(catalog.errors), len(catalog.warnings)
    lines.append(
        f"{len(catalog.runbooks)} runbook{'s' if len(catalog.runbooks) != 1 else ''}, "
        f"{len(catalog.modules)} module{'s' if len(catalog.modules) != 1 else ''}, "
        f"{errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}")
    return no_workflow_commands("\n".join(lines) + "\n")
