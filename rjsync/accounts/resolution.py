"""The modules one apply imports, resolved as one set: which version of each module and of each
dependency, decided together, before any import is sent.

Resolving each module on its own lets two of them need one dependency at different versions
(Az.DesktopVirtualization 6.0.0 needs Az.Accounts >= 5.6.0 where the runbooks ask for 5.5.2):
the dependency was imported at one version, upgraded for the other, and the modules sent during
the upgrade failed ("The required module 'Az.Accounts' … was not loaded"). Here every module of
the set has one version: the lowest the gallery has that every range on it allows (the
runbooks' minimum, each dependant's range) and never below what the account has. A module the
account has at a version every range allows is not imported again. An installed version the
service reports as ``Unknown`` (or none) counts as satisfying: the planner counts it as
installed too, so nothing re-imports it on every run.

``resolve_set`` is pure apart from the gallery look-ups it makes through ``lookup`` (a
``rjsync.accounts.gallery.Gallery`` or any object with its ``package``, ``versions`` and
``latest``), which cache their answers for the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from rjsync.accounts.gallery import Dependency, GalleryError, GalleryPackage
from rjsync.versions import version_key, version_known

#: Who asks for a range, when it is not another module.
RUNBOOKS = "the runbooks"
ACCOUNT = "the account's version (never downgraded)"
_MAX_ROUNDS = 100


class Lookup(Protocol):
    def package(self, name: str, version: str) -> GalleryPackage: ...

    def versions(self, name: str) -> Sequence[GalleryPackage]: ...

    def latest(self, name: str) -> GalleryPackage: ...


@dataclass(frozen=True)
class Resolved:
    """One module of a set: the version the account is to have and what that version needs.

    ``installed``: the account has it already at ``version`` (which every range allows): it is
    not imported, and its dependencies are not looked up (the account loaded them with it)."""

    id: str
    version: str | None
    dependencies: tuple[Dependency, ...] = ()
    installed: bool = False


@dataclass(frozen=True)
class ModuleSet:
    """``modules``: every module of the set, each after the modules it depends on. ``errors``:
    requirement (lower case) -> why it cannot be imported (its closure is left out)."""

    modules: tuple[Resolved, ...]
    errors: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Resolved | None:
        key = name.lower()
        return next((m for m in self.modules if m.id.lower() == key), None)

    def closure(self, name: str) -> list[Resolved]:
        """``name`` and every module it needs in the set, dependencies first, ``name`` last."""
        wanted: set[str] = set()
        stack = [name.lower()]
        while stack:
            key = stack.pop()
            module = self.get(key)
            if key in wanted or module is None:
                continue
            wanted.add(key)
            stack.extend(d.id.lower() for d in module.dependencies)
        return [m for m in self.modules if m.id.lower() in wanted]


class _Unsolvable(Exception):
    def __init__(self, roots: set[str], message: str):
        super().__init__(message)
        self.roots, self.message = roots, message


def resolve_set(requirements: Mapping[str, str | None], installed: Mapping[str, str | None],
                lookup: Lookup) -> ModuleSet:
    """Resolve ``requirements`` (name -> the minimum version to have, None: the newest stable)
    with every dependency, against ``installed`` (name -> version of the modules the account has
    loaded, i.e. Succeeded or Created). A requirement that cannot be resolved (unknown to the
    gallery, a dependency no version satisfies) is set aside with its reason; the rest still
    resolve together."""
    have = {k.lower(): v for k, v in installed.items()}
    roots: dict[str, Dependency] = {}
    errors: dict[str, str] = {}
    for name, version in requirements.items():
        key = name.lower()
        try:
            # an asked-for version must exist; the set may still take a newer one
            pkg = lookup.package(name, version) if version else lookup.latest(name)
        except GalleryError as err:
            errors[key] = err.message
            continue
        roots[key] = Dependency(pkg.id, pkg.version, True)
    while True:
        try:
            modules = _solve({k: d for k, d in roots.items() if k not in errors}, have, lookup)
            return ModuleSet(modules, errors)
        except _Unsolvable as err:
            for root in err.roots or set(roots):
                errors[root] = err.message


def _solve(roots: Mapping[str, Dependency], have: Mapping[str, str | None], lookup: Lookup) -> tuple[Resolved, ...]:
    """Choose a version for every module the roots reach, again and again until no choice moves.
    A choice only ever rises (the last one is a floor), so this ends."""
    chosen: dict[str, Resolved] = {}
    for _ in range(_MAX_ROUNDS):
        ranges: dict[str, list[tuple[Dependency, str]]] = {k: [(d, RUNBOOKS)] for k, d in roots.items()}
        reach: dict[str, set[str]] = {}  # module -> the roots that need it
        for root in roots:
            stack = [root]
            while stack:  # every module the current choices reach from ``root``
                key = stack.pop()
                if root in reach.setdefault(key, set()):
                    continue
                reach[key].add(root)
                stack.extend(d.id.lower() for d in (chosen[key].dependencies if key in chosen else ()))
        for key in reach:
            module = chosen.get(key)
            for dep in (module.dependencies if module else ()):
                ranges.setdefault(dep.id.lower(), []).append((dep, f"{module.id} {module.version}"))
        seen = set(reach)
        order = sorted(reach)
        moved = False
        for key in order:
            before = chosen.get(key)
            after = _choose(ranges[key], have.get(key), key in have, before, lookup, reach[key])
            if after != before:
                chosen[key] = after
                moved = True
        chosen = {k: v for k, v in chosen.items() if k in seen}
        if not moved:
            return _ordered(chosen)
    raise _Unsolvable(set(roots), "The versions of the modules to import did not settle; pin them in #Requires.")


def _choose(ranges: list[tuple[Dependency, str]], have: str | None, installed: bool,
            before: Resolved | None, lookup: Lookup, roots: set[str]) -> Resolved:
    name = ranges[0][0].id
    if installed and (before is None or before.installed) and (
            not version_known(have) or all(dep.allows(have) for dep, _ in ranges)):
        return Resolved(name, have, (), installed=True)
    floors = list(ranges)
    if installed and version_known(have):
        floors.append((Dependency(name, have, True), ACCOUNT))
    if before is not None and not before.installed:
        floors.append((Dependency(name, before.version, True), ""))  # a choice only rises; not a reason
    pkg = _lowest(name, floors, lookup, roots)
    if before is not None and not before.installed and version_key(pkg.version) == version_key(before.version):
        return before
    return Resolved(pkg.id, pkg.version, pkg.dependencies)


def _lowest(name: str, ranges: list[tuple[Dependency, str]], lookup: Lookup, roots: set[str]) -> GalleryPackage:
    """The lowest version of ``name`` the gallery has that every range allows (stable versions
    only, unless a range's minimum is itself a prerelease that every range allows)."""
    deps = [dep for dep, _ in ranges]
    lows = [d for d in deps if d.min_version]
    if lows:
        low = max(lows, key=lambda d: version_key(d.min_version))
        if low.min_inclusive and all(d.allows(low.min_version) for d in deps):
            try:
                return lookup.package(name, low.min_version)  # one small look-up, the usual case
            except GalleryError:
                pass  # e.g. "2.0" listed as "2.0.0": look through every version
    try:
        candidates = lookup.versions(name)
    except GalleryError as err:
        raise _Unsolvable(roots, err.message) from None
    for pkg in candidates:
        if not pkg.is_prerelease and all(d.allows(pkg.version) for d in deps):
            return pkg
    wants = "; ".join(f"{_describe(dep)} ({who})" for dep, who in _unique(ranges) if who)
    raise _Unsolvable(roots, f"No version of module '{name}' in the PowerShell Gallery satisfies {wants}.")


def _ordered(chosen: Mapping[str, Resolved]) -> tuple[Resolved, ...]:
    """Dependencies before their dependants; otherwise by name (deterministic)."""
    done: list[Resolved] = []
    placed: set[str] = set()
    pending = sorted(chosen, key=str.lower)
    while pending:
        ready = [k for k in pending
                 if all(d.id.lower() in placed or d.id.lower() not in chosen for d in chosen[k].dependencies)]
        if not ready:
            cycle = ", ".join(chosen[k].id for k in pending)
            raise _Unsolvable(set(), f"The modules {cycle} depend on each other in a cycle; they cannot be imported.")
        for key in ready:
            done.append(chosen[key])
            placed.add(key)
        pending = [k for k in pending if k not in placed]
    return tuple(done)


def _unique(ranges: list[tuple[Dependency, str]]) -> list[tuple[Dependency, str]]:
    seen, kept = set(), []
    for dep, who in ranges:
        if (dep, who) not in seen:
            seen.add((dep, who))
            kept.append((dep, who))
    return kept


def _describe(dep: Dependency) -> str:
    if dep.min_version and dep.min_version == dep.max_version and dep.min_inclusive and dep.max_inclusive:
        return f"= {dep.min_version}"
    low = f"{'>=' if dep.min_inclusive else '>'} {dep.min_version}" if dep.min_version else ""
    high = f"{'<=' if dep.max_inclusive else '<'} {dep.max_version}" if dep.max_version else ""
    return " and ".join(p for p in (low, high) if p) or "any version"
