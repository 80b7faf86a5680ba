"""The portal's view of a runbook's parameters, from its customization (pure).

Two sources, the tenant's first (``../shared/realmjoin.md``, "Runbook customization"): the
tenant's customization JSON (section ``Runbooks.<automation name>``) and the script's
``RunbookCustomization`` block. Each gives ``Parameters: {Name: {...}}`` and/or
``ParameterList: [{Name?, ...}]``; an entry without a ``Name`` is a select of its own (e.g.
"Action") whose options set other parameters through ``Customization.Default``. Settings of one
parameter merge key by key, the tenant's winning. Shapes the portal would not read are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


@dataclass
class Option:
    """One option of a ``Select``: its value (MISSING for a select of its own) and what choosing
    it does to other parameters (names folded to lower case)."""

    display: str
    value: Any = MISSING
    defaults: dict[str, Any] = field(default_factory=dict)
    hide: frozenset[str] = frozenset()
    mandatory: frozenset[str] = frozenset()


@dataclass
class ParameterView:
    hide: bool = False
    read_only: bool = False
    mandatory: bool = False
    default: Any = MISSING
    options: list[Option] | None = None  # a Select with values: the value must be one of them
    simple: list[Any] | None = None  # SelectSimple's values
    editable: bool = False  # AllowEdit: a value outside the options is allowed


@dataclass
class VirtualSelect:
    """A ``ParameterList`` entry without a name: a choice that only sets other parameters."""

    label: str
    options: list[Option]
    default_display: str | None


@dataclass
class PortalView:
    parameters: dict[str, ParameterView]
    selects: list[VirtualSelect]

    def of(self, name: str) -> ParameterView:
        return self.parameters.get(name.casefold()) or ParameterView()


def portal_view(runbook_name: str, script: Any, tenant: Any) -> PortalView:
    """Merge the script's block and the tenant's ``Runbooks.<runbook_name>`` section."""
    merged: dict[str, dict[str, Any]] = {}
    selects: list[VirtualSelect] = []
    for block in (script, _tenant_section(tenant, runbook_name)):
        if not isinstance(block, Mapping):
            continue
        entries: list[tuple[str | None, Any]] = []
        parameters = block.get("Parameters")
        if isinstance(parameters, Mapping):
            entries.extend((str(name), settings) for name, settings in parameters.items())
        parameter_list = block.get("ParameterList")
        if isinstance(parameter_list, list):
            for entry in parameter_list:
                if isinstance(entry, Mapping):
                    name = entry.get("Name")
                    entries.append((name if isinstance(name, str) else None, entry))
        for name, settings in entries:
            if not isinstance(settings, Mapping):
                continue
            if name is None:
                select = _virtual_select(settings)
                if select is not None:
                    selects.append(select)
                continue
            target = merged.setdefault(name.casefold(), {})
            if "Default" in settings or "DefaultValue" in settings:  # aliases: the later wins
                target.pop("Default", None)
                target.pop("DefaultValue", None)
            target.update(settings)
    return PortalView({key: _view(settings) for key, settings in merged.items()}, selects)


def _tenant_section(tenant: Any, runbook_name: str) -> Any:
    if not isinstance(tenant, Mapping):
        return None
    runbooks = tenant.get("Runbooks")
    if not isinstance(runbooks, Mapping):
        return None
    wanted = runbook_name.casefold()
    return next((v for k, v in runbooks.items() if str(k).casefold() == wanted), None)


def _view(settings: Mapping[str, Any]) -> ParameterView:
    view = ParameterView(
        hide=settings.get("Hide") is True,
        read_only=settings.get("ReadOnly") is True,
        mandatory=settings.get("Mandatory") is True or settings.get("Required") is True,
        editable=settings.get("AllowEdit") is True,
    )
    for key in ("DefaultValue", "Default"):
        if key in settings:
            view.default = settings[key]
            break
    select = settings.get("Select")
    if isinstance(select, Mapping):
        options = _options(select.get("Options"))
        if options and all(o.value is not MISSING for o in options):
            view.options = options
        elif options:  # a select without values on a named parameter only sets others
            view.options = [o for o in options if o.value is not MISSING] or None
        view.editable = view.editable or select.get("AllowEdit") is True
    simple = settings.get("SelectSimple")
    if isinstance(simple, Mapping) and simple:
        view.simple = list(simple.values())
    return view


def _virtual_select(settings: Mapping[str, Any]) -> VirtualSelect | None:
    select = settings.get("Select")
    if not isinstance(select, Mapping):
        return None
    options = _options(select.get("Options"))
    if not options:
        return None
    default = settings.get("DefaultValue", settings.get("Default"))
    label = settings.get("DisplayName")
    return VirtualSelect(str(label) if isinstance(label, str) else "a choice of the portal",
                         options, default if isinstance(default, str) else None)


def _options(raw: Any) -> list[Option]:
    if not isinstance(raw, list):
        return []
    options = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        value = entry.get("Value", entry.get("ParameterValue", MISSING))
        custom = entry.get("Customization")
        custom = custom if isinstance(custom, Mapping) else {}
        defaults = custom.get("Default")
        display = entry.get("Display")
        options.append(Option(
            display=str(display) if isinstance(display, str) else "",
            value=value,
            defaults={str(k).casefold(): v for k, v in defaults.items()}
            if isinstance(defaults, Mapping) else {},
            hide=_names(custom.get("Hide")),
            mandatory=_names(custom.get("Mandatory")),
        ))
    return options


def _names(raw: Any) -> frozenset[str]:
    if isinstance(raw, list):
        return frozenset(n.casefold() for n in raw if isinstance(n, str))
    return frozenset()
