"""Manifests: one YAML file per automation account, read into ``SyncSettings``.

A manifest names where runbooks come from, which account they go to, and the policy and
Azure options of the sync::

    source:
      path: ../runbooks          # or url: https://github.com/org/runbooks.git
      ref: main                  # optional branch, tag or commit
    target: local:../account     # or an automation account's ARM id
    policy: {prefix: rjgit-, max_deletions: 10}
    azure: {auth: default, cloud: public}   # identity: a user-assigned identity's principal id
    permissions: {require: true}  # a required grant the identity lacks is an error
    concurrency: 8

Reading is strict: an unknown key, a duplicate key or a value of the wrong kind is an error
that names the file, the line and the dotted key (``acme.yaml:7: policy.max_deletions: ...``).
Relative paths (``source.path``, the folder of a ``local:`` target) are relative to the
folder of the file that gives them. The schema is a table of key -> checker, walked over the
composed YAML nodes so every value keeps its file and line.

Folder defaults: a ``_defaults.yaml`` beside a manifest holds what every manifest in that
folder shares (the same schema, every key optional). A manifest overrides it key by key:
mappings merge, anything else (a list, a number, a string) replaces the default. A manifest
whose ``source`` gives ``url`` or ``path`` names its own repository and takes nothing from the
defaults' ``source`` (not even ``ref``); one giving only ``ref`` keeps their repository. The two
files are merged as YAML nodes before validation, so an error names the file and line the
offending value comes from.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from rjsync.accounts.base import check_environment_name, is_guid
from rjsync.accounts.credentials import AUTH_KINDS, CLOUDS
from rjsync.accounts.gallery import check_gallery_url
from rjsync.accounts.targets import ARM_ID_FORM, LocalTarget, TargetError, parse_target
from rjsync.catalog.naming import MIN_PREFIX_LENGTH, OWNED_PREFIX, check_prefix
from rjsync.engine.policy import CLASSIC, Policy
from rjsync.errors import AccountError, ManifestError, PrefixError, SourceError
from rjsync.settings import DEFAULT_CONCURRENCY, AzureOptions, SourceSpec, SyncSettings
from rjsync.source import check_ref, check_url

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"

_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

_SOURCE_FORM = ("add source: {url: https://host/org/runbooks.git} for a git repository, "
                "or source: {path: ./runbooks} for a folder")
_TARGET_FORM = (f"add target: local:PATH for a directory account, or target: {ARM_ID_FORM} "
                "for an automation account")


#: The file in a folder of manifests that holds their defaults (``.yml`` works too).
DEFAULTS_FILES = ("_defaults.yaml", "_defaults.yml")


@dataclass(frozen=True)
class Defaults:
    """A folder's validated ``_defaults.yaml``, composed once and merged into each manifest."""

    path: str
    node: yaml.MappingNode


_BESIDE = object()  # load_manifest: look for the defaults beside the manifest


def find_defaults(folder: str | os.PathLike) -> Path | None:
    """The defaults file of ``folder``, or None; both spellings at once is an error."""
    found = [Path(folder) / name for name in DEFAULTS_FILES if (Path(folder) / name).is_file()]
    if len(found) > 1:
        raise ManifestError(f"Both {found[0]} and {found[1]} exist; keep one defaults file.")
    return found[0] if found else None


def load_defaults(path: str | os.PathLike) -> Defaults:
    """Read and validate a defaults file: a manifest whose every key is optional."""
    shown = os.fspath(path)
    loader, root = _compose(shown)
    if root is None or root.tag == _NULL:
        start = (root or yaml.ScalarNode(_NULL, "")).start_mark
        root = yaml.MappingNode("tag:yaml.org,2002:map", [], start, start)
    _section(_TOP)(_Reader(shown, loader, partial=True), root, "")
    return Defaults(shown, root)


def load_manifest(path: str | os.PathLike, *, defaults: Defaults | None | object = _BESIDE
                  ) -> SyncSettings:
    """Read and validate the manifest at ``path``; raise ``ManifestError`` naming what is wrong.

    ``defaults`` is merged under the manifest; by default it is the ``_defaults.yaml`` beside
    the manifest, if there is one (``None``: no defaults).
    """
    shown = os.fspath(path)
    if defaults is _BESIDE:
        found = None if Path(shown).name in DEFAULTS_FILES else find_defaults(Path(shown).parent)
        defaults = load_defaults(found) if found else None
    loader, root = _compose(shown)
    if root is None or root.tag == _NULL:
        raise ManifestError(f"{shown}: the manifest is empty; it needs at least 'source' and "
                            "'target'.")
    if defaults is not None:
        root = _merge(defaults.node, root, "")
    values = _section(_TOP)(_Reader(shown, loader), root, "")
    for key, form in (("source", _SOURCE_FORM), ("target", _TARGET_FORM)):
        if key not in values:
            also = f" (here or in {defaults.path})" if defaults is not None else ""
            raise ManifestError(f"{shown}: '{key}' is missing{also}: {form}.")
    return SyncSettings(
        source=values["source"],
        target=values["target"],
        policy=Policy(**values.get("policy", {})),
        azure=AzureOptions(**{_AZURE_FIELDS.get(k, k): v for k, v in values.get("azure", {}).items()}),
        concurrency=values.get("concurrency", DEFAULT_CONCURRENCY),
        require_permissions=values.get("permissions", {}).get("require", False),
        name=Path(shown).stem,
        manifest=shown,
    )


def _compose(shown: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """The file's YAML node tree; every node's marks carry ``shown`` as their file name."""
    text = _read(shown)
    try:
        loader = yaml.SafeLoader(text)
        loader.name = shown  # marks are made while composing, from the reader's name
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{shown}:{mark.line + 1}" if mark else shown
        problem = err.problem or err.context
        if err.context and problem.startswith("but "):  # "expected a single document ..., but ..."
            problem = f"{err.context}, {problem}"
        raise ManifestError(f"{where}: not valid YAML: {problem}.") from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        raise ManifestError(f"{shown}:{line}: not valid YAML: {err.reason} "
                            f"(character #x{err.character:04x}).") from None
    except RecursionError:  # the composer recurses once per level: bound it with a sentence
        raise ManifestError(f"{shown}: not valid as a manifest: its YAML is nested too deeply.") from None
    return loader, root


#: section -> (keys, dropped): a manifest giving any of ``keys`` drops all of ``dropped`` from
#: the defaults' section. A manifest naming its own repository (url or path) inherits neither
#: the defaults' repository nor their ref; one giving only a ref keeps their repository.
_OWN = {"source": ({"url", "path"}, {"url", "path", "ref"})}


def _merge(base: yaml.Node, over: yaml.Node, key: str) -> yaml.Node:
    """``over`` with what ``base`` sets and ``over`` does not: mappings merge key by key,
    anything else in ``over`` replaces ``base``; an empty section (``policy:`` and nothing
    under it) keeps the defaults. ``base`` is a validated defaults node (unique keys);
    ``over``'s own duplicate or odd keys are kept for validation to report."""
    if isinstance(base, yaml.MappingNode) and isinstance(over, yaml.ScalarNode) \
            and over.tag == _NULL and key:
        return base
    if not (isinstance(base, yaml.MappingNode) and isinstance(over, yaml.MappingNode)):
        return over
    given = {k.value for k, _ in over.value if isinstance(k, yaml.ScalarNode)}
    dropped = set(given)
    keys, drops = _OWN.get(key, (set(), set()))
    if given & keys:
        dropped |= drops
    defaults = {k.value: v for k, v in base.value}
    pairs = [(k, v) for k, v in base.value if k.value not in dropped]
    merged: set[str] = set()
    for key_node, value in over.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if name in defaults and name not in merged:
            merged.add(name)
            value = _merge(defaults[name], value, f"{key}.{name}" if key else name)
        pairs.append((key_node, value))
    return yaml.MappingNode(over.tag, pairs, over.start_mark, over.end_mark, over.flow_style)


def _read(shown: str) -> str:
    if os.path.isdir(shown):
        raise ManifestError(f"The manifest '{shown}' is a folder; name a .yaml file in it.")
    try:
        data = Path(shown).read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"The manifest '{shown}' does not exist.") from None
    except OSError as err:
        raise ManifestError(f"Cannot read the manifest '{shown}': {err.strerror or err}.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ManifestError(f"{shown}:{line}: not UTF-8 text; save the manifest as UTF-8.") \
            from None


def _error(shown: str, line: int, key: str, message: str) -> ManifestError:
    """``file:line: key: message.``; no key for the top level, no period after a question."""
    label = f"{key}: " if key else ""
    end = "" if message.endswith("?") else "."
    return ManifestError(f"{shown}:{line}: {label}{message}{end}")


class _Reader:
    """What the checkers share: the file being read, its YAML loader, and whether it is a
    defaults file (``partial``: a section may leave out what a manifest needs). A value's own
    file (a manifest's, or its defaults') comes from the node's marks."""

    def __init__(self, shown: str, loader: yaml.SafeLoader, *, partial: bool = False) -> None:
        self.shown = shown
        self.loader = loader
        self.partial = partial

    def fail(self, node: yaml.Node, key: str, message: str) -> ManifestError:
        return _error(node.start_mark.name, node.start_mark.line + 1, key, message)

    def value(self, node: yaml.ScalarNode) -> Any:
        return self.loader.construct_object(node, deep=True)

    def resolve(self, node: yaml.Node, path: str) -> str:
        """``path`` relative to the folder of the file that gives it."""
        folder = Path(node.start_mark.name).absolute().parent
        return os.path.normpath(folder / os.path.expanduser(path))


Checker = Callable[[_Reader, yaml.Node, str], Any]


def _describe(node: yaml.Node) -> str:
    """What a node holds, for 'got ...' in messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    if node.tag == _STR:
        return repr(node.value)
    kind = {_INT: "number", _FLOAT: "number", _BOOL: "boolean"}.get(node.tag, node.tag)
    return f"{node.value} (a {kind})"


def _scalar(reader: _Reader, node: yaml.Node, key: str, tag: str, expected: str) -> Any:
    if not isinstance(node, yaml.ScalarNode) or node.tag != tag:
        raise reader.fail(node, key, f"expected {expected}, got {_describe(node)}")
    return reader.value(node)


# --------------------------------------------------------------------------- checkers


def _text(pattern: re.Pattern | None = None, rule: str = "") -> Checker:
    """A non-empty string; with ``pattern``, one that matches it (``rule`` says how)."""

    def check(reader: _Reader, node: yaml.Node, key: str) -> str:
        value = _scalar(reader, node, key, _STR, "text")
        if not value.strip():
            raise reader.fail(node, key, "must not be empty")
        if pattern and not pattern.match(value):
            raise reader.fail(node, key, f"{value!r} is not allowed: {rule}")
        return value

    return check


def _prefix(reader: _Reader, node: yaml.Node, key: str) -> str:
    """An owned prefix: letters, digits, '_' and '-', and what ``check_prefix`` asks of any prefix."""
    value = _text(_PREFIX, "use letters, digits, '_' and '-', starting with a letter")(reader, node, key)
    try:
        return check_prefix(value)
    except PrefixError:
        raise reader.fail(node, key, f"{value!r} is not allowed: give at least {MIN_PREFIX_LENGTH} characters "
                                     f"ending in '-' or '_' (like '{OWNED_PREFIX}'), so that no customer "
                                     "runbook counts as owned") from None


def _whole(minimum: int, maximum: int | None = None) -> Checker:
    expected = (f"a whole number >= {minimum}" if maximum is None
                else f"a whole number from {minimum} to {maximum}")

    def check(reader: _Reader, node: yaml.Node, key: str) -> int:
        value = _scalar(reader, node, key, _INT, expected)
        if value < minimum or (maximum is not None and value > maximum):
            raise reader.fail(node, key, f"expected {expected}, got {value}")
        return value

    return check


def _flag(reader: _Reader, node: yaml.Node, key: str) -> bool:
    return _scalar(reader, node, key, _BOOL, "true or false")


def _choice(options) -> Checker:
    def check(reader: _Reader, node: yaml.Node, key: str) -> str:
        value = _text()(reader, node, key)
        if value.lower() not in options:
            raise reader.fail(node, key, f"unknown value {value!r} (choose one of "
                                         f"{', '.join(options)}){_did_you_mean(value, options)}")
        return value.lower()

    return check


def _names(item: Checker, *, empty_ok: bool) -> Checker:
    """A list of strings, each passing ``item``; a tuple of them."""

    def check(reader: _Reader, node: yaml.Node, key: str) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise reader.fail(node, key, f"expected a list, got {_describe(node)}")
        if not node.value and not empty_ok:
            raise reader.fail(node, key, "must list at least one name")
        return tuple(item(reader, child, f"{key}[{index}]")
                     for index, child in enumerate(node.value))

    return check


def _context(reader: _Reader, node: yaml.Node, key: str) -> str:
    value = _text()(reader, node, key)
    if value in (".", "..") or "/" in value or "\\" in value:
        raise reader.fail(node, key, f"{value!r} is not a folder name: give a top-level folder "
                                     "of the source, like user")
    return value


def _runtime(reader: _Reader, node: yaml.Node, key: str) -> str:
    value = _text()(reader, node, key)
    if value.lower() != CLASSIC:
        try:
            check_environment_name(value)
        except AccountError as err:
            raise reader.fail(node, key, err.message.rstrip(".")) from None
    return value


def _packages(reader: _Reader, node: yaml.Node, key: str) -> tuple[tuple[str, str], ...]:
    """Default packages of a runtime environment: a mapping of package name to version, e.g.
    {Az: 12.3.0}; {} for none. Names are unique without regard to case; a version that YAML
    reads as a number (2.64) must be quoted, so it keeps its text."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise reader.fail(node, key, f"expected a mapping of package name to version, e.g. "
                                     f"{{Az: 12.3.0}}, got {_describe(node)}")
    found: dict[str, tuple[str, str]] = {}
    for name_node, version_node in node.value:
        if not isinstance(name_node, yaml.ScalarNode) or name_node.tag != _STR or not name_node.value.strip():
            raise reader.fail(name_node, key, f"a package name must be text, got {_describe(name_node)}")
        name = name_node.value.strip()
        where = f"{key}.{name}"
        if name.lower() in found:
            raise reader.fail(name_node, key, f"{name!r} is given twice (package names ignore case)")
        if isinstance(version_node, yaml.ScalarNode) and version_node.tag in (_INT, _FLOAT):
            raise reader.fail(version_node, where, f"expected a version as text, got "
                                                   f"{_describe(version_node)}; quote it: '{version_node.value}'")
        version = _text()(reader, version_node, where).strip()
        found[name.lower()] = (name, version)
    return tuple(found.values())


def _gallery(reader: _Reader, node: yaml.Node, key: str) -> str:
    value = _text()(reader, node, key)
    try:
        return check_gallery_url(value)
    except AccountError as err:
        raise reader.fail(node, key, err.message.rstrip(".")) from None


def _guid(reader: _Reader, node: yaml.Node, key: str) -> str:
    """A principal (object) id: a GUID, kept in lower case."""
    value = _text()(reader, node, key).strip()
    if not is_guid(value):
        raise reader.fail(node, key, f"{value!r} is not a GUID: give the principal (object) id of the "
                                     "user-assigned identity, like 3f2b9c1e-0000-4000-8000-000000000001")
    return value.lower()


def _ref(reader: _Reader, node: yaml.Node, key: str) -> str:
    """A branch, tag or commit. An unquoted commit like 1234567 is an int in YAML: keep its
    text as written (so 0123456 stays 0123456); a float or boolean is refused."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _INT:
        value = node.value
    else:
        if isinstance(node, yaml.ScalarNode) and node.tag in (_FLOAT, _BOOL):
            raise reader.fail(node, key, f"expected a branch, tag or commit, got "
                                         f"{_describe(node)}; quote it: ref: '{node.value}'")
        value = _text()(reader, node, key)
    return _source_check(reader, node, key, check_ref, value)


def _url(reader: _Reader, node: yaml.Node, key: str) -> str:
    return _source_check(reader, node, key, check_url, _text()(reader, node, key))


def _source_check(reader: _Reader, node: yaml.Node, key: str, check, value: str) -> str:
    try:
        check(value)
    except SourceError as err:
        raise reader.fail(node, key, err.message.rstrip(".")) from None
    return value


def _path(reader: _Reader, node: yaml.Node, key: str) -> str:
    return reader.resolve(node, _text()(reader, node, key))


def _target(reader: _Reader, node: yaml.Node, key: str) -> str:
    value = _text()(reader, node, key).strip()
    try:
        target = parse_target(value)
    except TargetError as err:
        if err.problem == "no folder":
            raise reader.fail(node, key, "'local:' names no folder; use local:PATH, e.g. "
                                         "local:./account") from None
        if err.problem == "unknown":
            raise reader.fail(node, key, f"expected local:PATH for a directory account or an "
                                         f"automation account's ARM id ({ARM_ID_FORM}), got {value!r}") from None
        raise reader.fail(node, key, err.message.rstrip(".")) from None
    if isinstance(target, LocalTarget):
        return "local:" + reader.resolve(node, target.path)
    return value


def _source(reader: _Reader, node: yaml.Node, key: str) -> SourceSpec | None:
    values = _section(_SOURCE)(reader, node, key)
    given = [k for k in ("url", "path") if k in values]
    if reader.partial and not given:  # defaults may give only the ref
        return None
    if len(given) != 1:
        why = "not both" if given else "one is needed"
        raise reader.fail(node, key, f"give either url (a git repository) or path (a folder or "
                                     f"local git repository), {why}")
    return SourceSpec(location=values[given[0]], ref=values.get("ref"))


def _section(fields: dict[str, Checker]) -> Checker:
    """A mapping whose keys are ``fields``; a dict of the checked values of the keys given.
    An empty section (``policy:`` with every line commented out) is an empty mapping."""

    def check(reader: _Reader, node: yaml.Node, key: str) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL and key:
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise reader.fail(node, key, f"expected a mapping with the keys {', '.join(fields)}, "
                                         f"got {_describe(node)}")
        values: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            shown, line = key_node.start_mark.name, key_node.start_mark.line + 1
            if name in first_line:
                raise _error(shown, line, key, f"duplicate key {name!r} (first given on "
                                               f"line {first_line[name]})")
            if name is None:
                raise _error(shown, line, key, f"a key must be a name, got {_describe(key_node)}")
            if name not in fields:
                raise _error(shown, line, key, f"unknown key {name!r} (known keys: "
                                               f"{', '.join(fields)})"
                                               f"{_did_you_mean(name or '', fields)}")
            first_line[name] = line
            values[name] = fields[name](reader, value_node, f"{key}.{name}" if key else name)
        return values

    return check


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(word.lower(), list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------- the schema

_SOURCE: dict[str, Checker] = {"url": _url, "path": _path, "ref": _ref}

_POLICY: dict[str, Checker] = {
    "prefix": _prefix,
    "contexts": _names(_context, empty_ok=False),
    "exclude": _names(_text(), empty_ok=True),
    "runtime": _runtime,
    "max_deletions": _whole(0),
    "modules": _flag,
    "keep_drifted": _flag,
    "default_packages": _packages,
}

_AZURE: dict[str, Checker] = {
    "auth": _choice(AUTH_KINDS),
    "client_id": _text(),
    "cloud": _choice(tuple(CLOUDS)),
    "arm_endpoint": _text(re.compile(r"^https://", re.IGNORECASE),
                          "use an https:// URL (tokens are never sent over plain HTTP)"),
    "gallery": _gallery,
    # the user-assigned identity the runbooks run as (its principal id); else the system-assigned one
    "identity": _guid,
    "graph_endpoint": _text(re.compile(r"^https://", re.IGNORECASE),
                            "use an https:// URL (tokens are never sent over plain HTTP)"),
}

#: manifest key under azure -> AzureOptions field, where they differ
_AZURE_FIELDS = {"identity": "permissions_identity"}

_PERMISSIONS: dict[str, Checker] = {"require": _flag}

_TOP: dict[str, Checker] = {
    "source": _source,
    "target": _target,
    "policy": _section(_POLICY),
    "azure": _section(_AZURE),
    "permissions": _section(_PERMISSIONS),
    "concurrency": _whole(1, 64),
}
