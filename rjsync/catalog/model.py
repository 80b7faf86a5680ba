"""The catalog's values and their JSON form (the contract in design.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # error | warning | info
    path: str | None
    line: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "path": self.path, "line": self.line,
                "message": self.message}

    def sort_key(self) -> tuple:
        return (self.path or "", self.line or 0, SEVERITIES.index(self.severity), self.message)


@dataclass(frozen=True)
class CatalogParameter:
    name: str
    type: str
    mandatory: bool
    default: Any = None
    default_expression: str | None = None
    help: str | None = None
    validate_set: list[str] | None = None
    rj_interface: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "mandatory": self.mandatory,
            "default": self.default,
        }
        if self.default_expression is not None:
            data["default_expression"] = self.default_expression
        data["help"] = self.help
        data["validate_set"] = self.validate_set
        data["rj_interface"] = self.rj_interface
        return data


@dataclass(frozen=True)
class Requirement:
    """One module a runbook requires; ``minimum_version`` None means any version."""

    name: str
    minimum_version: str | None = None
    required_version: str | None = None
    maximum_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "minimum_version": self.minimum_version}
        if self.required_version is not None:
            data["required_version"] = self.required_version
        if self.maximum_version is not None:
            data["maximum_version"] = self.maximum_version
        return data


@dataclass(frozen=True)
class Runbook:
    name: str
    path: str
    context: str
    category: str
    display_name: str
    schedulable: bool
    sha256: str
    synopsis: str | None
    description: str | None
    notes: str | None
    parameters: tuple[CatalogParameter, ...]
    modules: tuple[Requirement, ...]
    customization: Any = None
    permissions: dict[str, Any] | None = None
    encoding: str = "utf-8"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "context": self.context,
            "category": self.category,
            "display_name": self.display_name,
            "schedulable": self.schedulable,
            "sha256": self.sha256,
            "encoding": self.encoding,
            "synopsis": self.synopsis,
            "description": self.description,
            "notes": self.notes,
            "parameters": [p.to_json() for p in self.parameters],
            "modules": [m.to_json() for m in self.modules],
            "customization": self.customization,
            "permissions": self.permissions,
        }


@dataclass(frozen=True)
class ModuleNeed:
    """A module the catalog needs: the highest minimum version any runbook asks for."""

    name: str
    minimum_version: str | None
    runbooks: tuple[str, ...]
    required_versions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "minimum_version": self.minimum_version}
        if self.required_versions:
            data["required_versions"] = list(self.required_versions)
        data["runbooks"] = list(self.runbooks)
        return data


@dataclass(frozen=True)
class SourceInfo:
    """Where the catalog came from: kind (folder|git), location, ref, resolved commit."""

    kind: str
    location: str
    ref: str | None = None
    commit: str | None = None
    dirty: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "location": self.location, "ref": self.ref,
                                "commit": self.commit}
        if self.dirty:
            data["dirty"] = True
        return data


@dataclass(frozen=True)
class Catalog:
    source: SourceInfo
    runbooks: tuple[Runbook, ...]
    modules: tuple[ModuleNeed, ...]
    diagnostics: tuple[Diagnostic, ...] = field(default_factory=tuple)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "warning")

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.to_json(),
            "runbooks": [r.to_json() for r in self.runbooks],
            "modules": [m.to_json() for m in self.modules],
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


@dataclass(frozen=True)
class SourceFile:
    """One file of the source tree: posix path relative to the root, and its bytes."""

    path: str
    data: bytes
