"""A job's parameters checked against the catalog, before anything starts (pure).

``check_parameters(runbook, values, customization)`` answers what Azure's job PUT gets
(``values``: name -> JSON text) or every problem found (``problems``: one sentence each).

What a runbook receives through an Azure job: the PUT carries each parameter as a string, and
Az.Automation's Start-AzAutomationRunbook writes each value as JSON (Azure/azure-powershell,
src/Automation/Automation/Common/PowershellJsonConverter.cs, ``Serialize`` since Az.Automation
1.5.1, ChangeLog #14215 and #14431: strings are trimmed, so are strings in arrays, then one
``JsonConvert.SerializeObject``; AutomationPSClient.cs ``ProcessRunbookParameters`` sends only
the runbook's declared parameters, under their declared names, refuses unknown ones and missing
mandatory ones). The sandbox reads each text as JSON, so ``"false"`` reaches a ``[bool]`` as the
text "false", which PowerShell refuses to bind, while ``false`` is $false; the binding rules are
in ``conversion.py``. That is why the body's JSON types matter and are checked as sent.

Also checked: names (case-insensitive, as PowerShell matches them), mandatory parameters after
the customization's defaults (PowerShell also refuses null, an empty string and an empty list
for them: ParameterBinderBase.cs ``ValidateNullOrEmptyArgument``), ``ValidateSet`` (compared
case-insensitively, as ``ValidateSetAttribute`` does), the portal's Select and SelectSimple
options, and parameters the portal hides. A hidden parameter that the script declares mandatory
and the customization gives no default is a context parameter (``UserName``, ``CallerName``):
the portal fills it from the object or the operator, and an API caller gives it. A hidden
parameter that a portal choice sets (an option's ``Customization.Default``) may be set to one of
the values the options give it. ``context`` holds what the service fills itself (e.g.
``CallerName`` = the caller): a caller's own value for it is refused. Azure accepts at most
512 KiB of parameters in all (``../shared/azure-automation-api.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rjsync.catalog.model import CatalogParameter, Runbook
from rjsync.jobs.conversion import Refused, bind, dotnet_text, dotnet_trim, element_type
from rjsync.jobs.customization import MISSING, Option, PortalView, portal_view

MAX_TOTAL_BYTES = 512 * 1024
MAX_DEPTH = 64
_SECRET = re.compile(r"pass(word|wd|phrase)?|pwd|secret|token|credential|api_?key|private_?key",
                     re.IGNORECASE)
_SHOWN_NAMES = 10


@dataclass(frozen=True)
class CheckedParameters:
    """``values``: the job's parameters as Azure's PUT takes them (empty when there are
    problems); ``problems``: one sentence each, naming the parameter."""

    values: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_parameters(runbook: Runbook, values: Mapping[str, Any],
                     customization: Mapping | None = None, *,
                     context: Mapping[str, Any] | None = None) -> CheckedParameters:
    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        return CheckedParameters({}, ["The parameters must be a JSON object of names and values."])
    problems: list[str] = []
    declared = {p.name.casefold(): p for p in runbook.parameters}
    view = portal_view(runbook.name, runbook.customization, customization)

    given, by_caller = _match_names(runbook, declared, values, context or {}, problems)
    chosen = _choose_options(declared, view, given, problems)
    _check_hidden(declared, view, chosen, by_caller, problems)
    sources = {key: "the caller" if key in by_caller else "the service" for key in given}
    _apply_defaults(declared, view, chosen, given, sources)
    _check_missing(declared, view, chosen, given, problems)
    texts: dict[str, str] = {}
    for param in runbook.parameters:
        key = param.name.casefold()
        if key in given:
            text = _check_value(param, view, given[key], sources[key], problems)
            if text is not None:
                texts[param.name] = text
    size = sum(len(n.encode()) + len(t.encode()) for n, t in texts.items())
    if size > MAX_TOTAL_BYTES:
        problems.append(f"The parameters take {size // 1024} KiB as Azure receives them; Azure "
                        f"accepts at most {MAX_TOTAL_BYTES // 1024} KiB in all for one job.")
    return CheckedParameters({} if problems else texts, problems)


# --------------------------------------------------------------------------- names


def _match_names(runbook: Runbook, declared: dict[str, CatalogParameter],
                 values: Mapping[str, Any], context: Mapping[str, Any],
                 problems: list[str]) -> tuple[dict[str, Any], set[str]]:
    given: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in values.items():
        key = name.casefold()
        if key not in declared:
            unknown.append(name)
        elif key in spelled:
            problems.append(f"Parameter {declared[key].name} is given twice ({_name(spelled[key])} "
                            f"and {_name(name)}); PowerShell matches names case-insensitively.")
        else:
            spelled[key] = name
            given[key] = value
    if unknown:
        shown = ", ".join(_name(n) for n in unknown[:_SHOWN_NAMES])
        more = f" and {len(unknown) - _SHOWN_NAMES} more" if len(unknown) > _SHOWN_NAMES else ""
        takes = ", ".join(p.name for p in runbook.parameters) or "no parameters"
        problems.append(f"Unknown parameter{'s' if len(unknown) > 1 else ''} {shown}{more}: "
                        f"{runbook.name} takes {takes}.")
    by_caller = set(given)
    for name, value in context.items():
        key = name.casefold()
        if key not in declared:
            continue
        if key in by_caller:
            problems.append(f"Parameter {declared[key].name} is filled by the service and cannot "
                            "be set by the caller.")
            by_caller.discard(key)
        given[key] = value
    return given, by_caller


def _name(text: str) -> str:
    return json.dumps(text[:64] + ("…" if len(text) > 64 else ""))


# --------------------------------------------------------------------------- the portal's view


def _choose_options(declared: dict[str, CatalogParameter], view: PortalView,
                    given: dict[str, Any], problems: list[str]) -> list[tuple[str, Option]]:
    """The options in effect: ``(what chose it, option)`` for each select."""
    chosen: list[tuple[str, Option]] = []
    for key, settings in view.parameters.items():
        if settings.options is None or key not in declared:
            continue
        param = declared[key]
        value = given.get(key, settings.default)
        if value is MISSING:
            value = param.default
        option = next((o for o in settings.options if _same(param, o.value, value)), None)
        if option is not None:
            chosen.append((f"{param.name} is {_text(param.name, value)}", option))
    for select in view.selects:
        # The caller cannot name the option: the first one consistent with the values given for
        # the parameters the options touch is the one (giving a value the option defaults to,
        # or one it leaves to the caller, not one it hides).
        controlled = [k for k in given if any(k in o.defaults or k in o.hide or k in o.mandatory
                                              for o in select.options)]
        option = None
        if controlled:
            option = next((o for o in select.options if all(
                k not in o.hide and (k not in o.defaults
                                     or _same(declared.get(k), o.defaults[k], given[k]))
                for k in controlled)), None)
            if option is None:
                names = ", ".join(declared[k].name for k in controlled if k in declared)
                problems.append(f"Parameter{'s' if len(controlled) > 1 else ''} {names}: no "
                                f"option of {_name(select.label)} in the portal gives "
                                f"{'these values' if len(controlled) > 1 else 'this value'}.")
        if option is None:
            option = next((o for o in select.options if o.display == select.default_display),
                          select.options[0])
        chosen.append((f"{_name(select.label)} is {_name(option.display)}", option))
    return chosen


def _select_controlled(view: PortalView) -> set[str]:
    return {k for select in view.selects for o in select.options for k in o.defaults}


def _check_hidden(declared: dict[str, CatalogParameter], view: PortalView,
                  chosen: list[tuple[str, Option]], by_caller: set[str],
                  problems: list[str]) -> None:
    controlled = _select_controlled(view)
    for key in sorted(by_caller, key=lambda k: list(declared).index(k)):
        param, settings = declared[key], view.of(key)
        hidden_by = next((why for why, o in chosen if key in o.hide), None)
        if hidden_by is not None:
            problems.append(f"Parameter {param.name} is hidden in the portal when {hidden_by} "
                            "and cannot be set by the caller.")
        elif settings.read_only:
            problems.append(f"Parameter {param.name} is read-only in the portal and cannot be set "
                            "by the caller.")
        elif settings.hide and key not in controlled and not (
                param.mandatory and settings.default is MISSING):
            problems.append(f"Parameter {param.name} is hidden in the portal and cannot be set by "
                            "the caller.")


def _apply_defaults(declared: dict[str, CatalogParameter], view: PortalView,
                    chosen: list[tuple[str, Option]], given: dict[str, Any],
                    sources: dict[str, str]) -> None:
    for _, option in chosen:
        for key, value in option.defaults.items():
            if key in declared and key not in given:
                given[key] = _portal_value(declared[key], value)
                sources[key] = "the portal choice's default"
    for key, settings in view.parameters.items():
        if key in declared and key not in given and settings.default is not MISSING:
            given[key] = _portal_value(declared[key], settings.default)
            sources[key] = "the customization's default"


def _portal_value(param: CatalogParameter, value: Any) -> Any:
    """A default as the portal's form reads it: its toggle reads the text "true" or "false" as
    a Boolean (inferred: the upstream writes ``"DefaultValue": "false"`` for a [bool])."""
    if param.type in ("Boolean", "SwitchParameter") and isinstance(value, str) \
            and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _check_missing(declared: dict[str, CatalogParameter], view: PortalView,
                   chosen: list[tuple[str, Option]], given: dict[str, Any],
                   problems: list[str]) -> None:
    required_by = {k: why for why, o in reversed(chosen) for k in o.mandatory}
    for key, param in declared.items():
        if key in given:
            continue
        has_default = param.default is not None or param.default_expression is not None
        if param.mandatory:
            problems.append(f"Missing mandatory parameter {param.name} ({param.type}).")
        elif not has_default and view.of(key).mandatory:
            problems.append(f"Missing parameter {param.name} ({param.type}), mandatory in the "
                            "portal's customization.")
        elif not has_default and key in required_by:
            problems.append(f"Missing parameter {param.name} ({param.type}), mandatory in the "
                            f"portal when {required_by[key]}.")


# --------------------------------------------------------------------------- values


def _check_value(param: CatalogParameter, view: PortalView, value: Any, source: str,
                 problems: list[str]) -> str | None:
    who = "" if source in ("the caller", "the service") else f" ({source})"
    label = f"Parameter {param.name}{who}"
    if _too_deep(value):
        problems.append(f"{label} is nested more than {MAX_DEPTH} levels deep.")
        return None
    value = _trimmed(value)
    try:
        bound = bind(value, param.type)
    except Refused as refused:
        problems.append(f"{label}: {_text(param.name, value)} cannot be bound to {param.type}: "
                        f"{refused.reason}.")
        return None
    if param.mandatory:
        empty = _empty(param, value, bound)
        if empty:
            problems.append(f"{label} is mandatory and PowerShell refuses {empty} for it.")
            return None
    items = bound if element_type(param.type) is not None else [bound]
    if param.validate_set:
        allowed = {v.casefold() for v in param.validate_set}
        wrong = next((item for item in items if dotnet_text(item).casefold() not in allowed), None)
        if wrong is not None:
            problems.append(f"{label}: {_text(param.name, wrong)} is not one of "
                            f"{_listing(param.validate_set)} (its ValidateSet).")
            return None
    settings = view.of(param.name)
    for choices, what in ((settings.options and [o.value for o in settings.options], "Select"),
                          (settings.simple, "SelectSimple")):
        if choices and not settings.editable and not any(_same(param, c, value) for c in choices):
            problems.append(f"{label}: {_text(param.name, value)} is not one of the portal's "
                            f"options ({what}: {_listing([_plain(c) for c in choices])}).")
            return None
    try:
        return _serialise(value)
    except ValueError:  # an integer of more digits than Python writes (sys.int_info)
        problems.append(f"{label}: the value holds a number of too many digits.")
        return None


def _empty(param: CatalogParameter, value: Any, bound: Any) -> str | None:
    if value is None and param.type not in ("Boolean", "SwitchParameter"):
        return "null"
    if param.type == "String" and bound == "":
        return "an empty string"
    if element_type(param.type) is not None:
        if not bound:
            return "an empty list"
        if element_type(param.type) == "String" and any(v is None for v in (
                value if isinstance(value, list) else [value])):
            return "a null item"
    return None


def _same(param: CatalogParameter | None, option_value: Any, value: Any) -> bool:
    """Whether two values bind to the same thing (text compared case-insensitively)."""
    if param is None:
        return option_value == value
    try:
        left, right = bind(_trimmed(option_value), param.type), bind(_trimmed(value), param.type)
    except Refused:
        return False
    if isinstance(left, list) or isinstance(right, list):
        return left == right
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return left == right


def _trimmed(value: Any) -> Any:
    """Az.Automation's ``ConvertObjectInternal``: strings trimmed, also inside arrays (not inside
    objects, which it serialises as they are)."""
    if isinstance(value, str):
        return dotnet_trim(value)
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    return value


def _serialise(value: Any) -> str:
    """Newtonsoft's ``JsonConvert.SerializeObject``: compact, non-ASCII kept, and U+0085, U+2028,
    U+2029 escaped as its JavaScriptUtils does."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if any(c in text for c in "\x85\u2028\u2029"):
        text = text.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace(
            "\u2029", "\\u2029")
    return text


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((v, depth + 1) for v in children)
    return False


def _text(name: str, value: Any) -> str:
    """The value as a problem may show it: never for a secret's name, short, ASCII only."""
    if _SECRET.search(name):
        return "the value"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return "a number of too many digits"
    if isinstance(value, str):
        shown = json.dumps(value[:40])
        return shown[:-1] + "…\"" if len(value) > 40 else shown
    return json.dumps(value)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _listing(items: list[str]) -> str:
    shown = ", ".join(_name(i) for i in items[:_SHOWN_NAMES])
    return shown + (f" and {len(items) - _SHOWN_NAMES} more" if len(items) > _SHOWN_NAMES else "")
