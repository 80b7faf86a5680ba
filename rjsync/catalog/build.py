"""Build a Catalog from the files of a source tree. Pure: values in, values out."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import json5

from rjsync.catalog import naming
from rjsync.catalog.model import (
    Catalog,
    CatalogParameter,
    Diagnostic,
    ModuleNeed,
    Requirement,
    Runbook,
    SourceFile,
    SourceInfo,
)
from rjsync.catalog.powershell import parse_script
from rjsync.catalog.text import decode, text_sha256
from rjsync.versions import version_key

_CUSTOMIZATION = re.compile(r"RunbookCustomization\s*:", re.IGNORECASE)


def build_catalog(
    source: SourceInfo,
    files: Iterable[SourceFile],
    *,
    contexts: Iterable[str] = naming.DEFAULT_CONTEXTS,
    prefix: str = naming.OWNED_PREFIX,
    diagnostics: Iterable[Diagnostic] = (),
) -> Catalog:
    """Read every ``<context>/<category>/<name>.ps1`` in ``files`` into a Catalog."""
    contexts = tuple(c.lower() for c in contexts)
    by_path = {f.path: f for f in files}
    found: list[Diagnostic] = list(diagnostics)
    other_folders: dict[str, list[str]] = defaultdict(list)
    runbooks: list[Runbook] = []

    for path in sorted(by_path):
        if not path.lower().endswith(".ps1"):
            continue
        parts = path.split("/")
        if any(part.startswith(".") for part in parts[:-1]):
            continue  # .github/scripts and the like are tooling, not runbooks
        top = parts[0].lower() if len(parts) > 1 else ""
        if len(parts) != 3:
            if top in contexts:
                found.append(Diagnostic(
                    "warning", path, None,
                    "not in the <context>/<category>/<name>.ps1 layout; not synced"))
            continue
        if top not in contexts:
            other_folders[parts[0]].append(path)
            continue
        runbook, problems = _read_runbook(by_path[path], by_path, prefix)
        found.extend(problems)
        if runbook is not None:
            runbooks.append(runbook)

    for folder, paths in sorted(other_folders.items()):
        found.append(Diagnostic(
            "info", folder, None,
            f"folder {folder!r} holds {len(paths)} script(s) in the runbook layout but is not a "
            f"synced context (contexts: {', '.join(contexts)}); list it in the contexts to sync it"))

    runbooks = _drop_collisions(runbooks, found)
    modules = module_union(runbooks, found)
    return Catalog(
        source=source,
        runbooks=tuple(sorted(runbooks, key=lambda r: r.name)),
        modules=modules,
        diagnostics=tuple(sorted(found, key=Diagnostic.sort_key)),
    )


def _read_runbook(
    file: SourceFile, by_path: dict[str, SourceFile], prefix: str
) -> tuple[Runbook | None, list[Diagnostic]]:
    path = file.path
    context, category, leaf = path.split("/")
    stem = leaf[: -len(".ps1")]
    names = naming.runbook_name(context, category, stem, prefix)
    problems: list[Diagnostic] = []

    for message in naming.name_problems(names.name):
        problems.append(Diagnostic("warning", path, None, message))

    decoded = decode(file.data)
    if not decoded.exact:
        problems.append(Diagnostic(
            "warning", path, None,
            f"not valid UTF-8 and has no BOM; read as {decoded.encoding}. Windows PowerShell 5.1 "
            "reads it as ANSI, PowerShell 7 as UTF-8: save it as UTF-8 with a BOM"))
    try:
        script = parse_script(decoded.text)
    except RecursionError:  # the tree walks recurse once per level of nesting
        problems.append(Diagnostic("error", path, None, "the script is nested too deeply to be read"))
        return None, problems
    for d in script.diagnostics:
        problems.append(Diagnostic(d.severity, path, d.line, d.message))
    if not script.param_block_ok:
        return None, problems

    help_info = script.help
    synopsis = help_info.synopsis if help_info else None
    if not synopsis:
        problems.append(Diagnostic(
            "warning", path, 1,
            "no .SYNOPSIS in the comment-based help; the portal shows no description"))

    customization = None
    if help_info is not None:
        customization = _customization(help_info.inputs, decoded.text, path, problems)

    permissions = _permissions(path, by_path, problems)

    parameters = tuple(
        CatalogParameter(
            name=p.name,
            type=p.type,
            mandatory=p.mandatory,
            default=p.default,
            default_expression=p.default_expression,
            help=p.help,
            validate_set=p.validate_set,
            rj_interface=p.rj_interface,
        )
        for p in script.parameters
    )
    modules = tuple(
        Requirement(r.name, r.minimum_version, r.required_version, r.maximum_version)
        for r in script.requires
    )
    runbook = Runbook(
        name=names.name,
        path=path,
        context=names.context,
        category=names.category,
        display_name=names.display_name,
        schedulable=names.schedulable,
        sha256=text_sha256(decoded.text),
        synopsis=synopsis or None,
        description=(help_info.description or None) if help_info else None,
        notes=(help_info.notes or None) if help_info else None,
        parameters=parameters,
        modules=modules,
        customization=customization,
        permissions=permissions,
        encoding=decoded.encoding,
    )
    return runbook, problems


def _customization(inputs: list[str], text: str, path: str, problems: list[Diagnostic]) -> Any:
    for section in inputs:
        match = _CUSTOMIZATION.search(section)
        if match is None:
            continue
        body = section[match.end():].strip()
        line = _line_of(text, "RunbookCustomization")
        try:
            return load_lenient_json(body)
        except (ValueError, RecursionError) as exc:
            problems.append(Diagnostic(
                "warning", path, line,
                f"RunbookCustomization in .INPUTS is not valid JSON: {_short(exc)}; "
                "the portal ignores it"))
            return None
    return None


def load_lenient_json(text: str) -> Any:
    """JSON with comments and trailing commas. Strict JSON is tried first: the C parser is two
    orders of magnitude faster than json5's, and most files are strict."""
    try:
        return json.loads(text)
    except ValueError:
        return json5.loads(text)


def _line_of(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else None


def _short(exc: Exception) -> str:
    if isinstance(exc, RecursionError):  # the parsers recurse once per level of nesting
        return "it is nested too deeply"
    return str(exc).splitlines()[0][:160]


def _permissions(path: str, by_path: dict[str, SourceFile], problems: list[Diagnostic]):
    sidecar_path = path[: -len(".ps1")] + ".permissions.json"
    sidecar = by_path.get(sidecar_path)
    if sidecar is None:
        return None
    try:
        data = load_lenient_json(decode(sidecar.data).text)
        return normalize_permissions(data)
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        problems.append(Diagnostic(
            "warning", sidecar_path, _error_line(exc),
            f"permissions file cannot be read: {_short(exc)}"))
        return None


def _error_line(exc: Exception) -> int | None:
    match = re.search(r"line (\d+)", str(exc)) or re.search(r"<string>:(\d+)", str(exc))
    return int(match.group(1)) if match else None


def normalize_permissions(data: Any) -> dict[str, Any]:
    """Schema v1 (strings) and v2 (objects) of ``<name>.permissions.json`` in one shape."""
    if not isinstance(data, dict):
        raise TypeError("expected a JSON object at the top level")
    version = data.get("SchemaVersion", 1)

    def app_role(entry: Any) -> dict[str, Any]:
        if isinstance(entry, str):
            return {"value": entry.strip(), "optional": False}
        if isinstance(entry, dict) and isinstance(entry.get("Value"), str):
            out = {"value": entry["Value"].strip(), "optional": bool(entry.get("Optional", False))}
            for key in ("Feature", "Reason"):
                if key in entry:
                    out[key.lower()] = entry[key]
            return out
        raise TypeError(f"app role assignment {json.dumps(entry)} is neither a string nor "
                        "an object with a Value")

    def role(entry: Any) -> dict[str, Any]:
        if isinstance(entry, str):
            return {"name": entry.strip(), "optional": False}
        if isinstance(entry, dict) and isinstance(entry.get("Name"), str):
            out = {"name": entry["Name"].strip(), "optional": bool(entry.get("Optional", False))}
            for key, target in (("TemplateId", "template_id"), ("Feature", "feature"),
                                ("Reason", "reason")):
                if key in entry:
                    out[target] = entry[key]
            return out
        raise TypeError(f"role {json.dumps(entry)} is neither a string nor an object with a Name")

    permissions = []
    for resource in data.get("Permissions") or []:
        if not isinstance(resource, dict):
            raise TypeError(f"permission entry {json.dumps(resource)} is not an object")
        permissions.append({
            "name": resource.get("Name"),
            "id": resource.get("Id"),
            "app_roles": [app_role(a) for a in resource.get("AppRoleAssignments") or []],
        })
    return {
        "schema_version": version,
        "permissions": permissions,
        "roles": [role(r) for r in data.get("Roles") or []],
        "manual": [str(m) for m in data.get("ManualPermissions") or []],
    }


def _drop_collisions(runbooks: list[Runbook], found: list[Diagnostic]) -> list[Runbook]:
    """Two scripts mapping to one runbook name (Azure ignores case): neither is synced."""
    groups: dict[str, list[Runbook]] = defaultdict(list)
    for runbook in runbooks:
        groups[runbook.name.lower()].append(runbook)
    kept = []
    for name, group in groups.items():
        if len(group) == 1:
            kept.append(group[0])
            continue
        paths = ", ".join(r.path for r in group)
        for runbook in group:
            found.append(Diagnostic(
                "error", runbook.path, None,
                f"{paths} all map to the runbook {name!r} (Azure names ignore case); "
                "none of them is synced until one is renamed"))
    return kept


def module_union(runbooks: Iterable[Runbook], found: list[Diagnostic]) -> tuple[ModuleNeed, ...]:
    """The modules ``runbooks`` need, by name, each at the highest minimum any of them asks for."""
    by_name: dict[str, dict[str, Any]] = {}
    for runbook in runbooks:
        for requirement in runbook.modules:
            entry = by_name.setdefault(requirement.name.lower(), {
                "name": requirement.name, "minimum": None, "required": set(), "runbooks": set()})
            entry["runbooks"].add(runbook.name)
            floor = requirement.minimum_version or requirement.required_version
            if floor and (entry["minimum"] is None
                          or version_key(floor) > version_key(entry["minimum"])):
                entry["minimum"] = floor
            if requirement.required_version:
                entry["required"].add(requirement.required_version)
    needs = []
    for entry in sorted(by_name.values(), key=lambda e: e["name"].lower()):
        required = tuple(sorted(entry["required"], key=version_key))
        if len(required) > 1:
            found.append(Diagnostic(
                "warning", None, None,
                f"module {entry['name']}: runbooks require the exact versions "
                f"{', '.join(required)}; an account holds one version of a module"))
        needs.append(ModuleNeed(
            name=entry["name"],
            minimum_version=entry["minimum"],
            runbooks=tuple(sorted(entry["runbooks"])),
            required_versions=required,
        ))
    return tuple(needs)
