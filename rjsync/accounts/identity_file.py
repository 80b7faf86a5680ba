"""A directory account's identity: ``PATH/identity.json`` says what the identity its runbooks
run as holds, so plans show the permissions section without Microsoft Graph::

    {
      "principalId": "3f2b9c1e-0000-4000-8000-000000000001",
      "appRoles": [{"resource": "00000003-0000-0000-c000-000000000000", "value": "User.Read.All"}],
      "directoryRoles": [{"templateId": "29232cdf-9323-42fd-ade2-1d097af3e4de",
                          "name": "Exchange Administrator"}]
    }

``resource`` is the resource app's appId (Microsoft Graph, Office 365 Exchange Online,
WindowsDefenderATP, ...), ``value`` the app role as the resource spells it; a directory role is
its template id (may be left out when the permissions files name the role only) and display name. ``principalId`` (optional) and ``description`` (free text) are
for people. Any other key, or a value of the wrong kind, makes the file wrong: one sentence
that names the file and the entry.
"""

from __future__ import annotations

import json
from pathlib import Path

from rjsync.accounts.base import Grants, is_guid
from rjsync.errors import GrantsUnreadable

IDENTITY_FILE = "identity.json"

_KEYS = ("principalId", "appRoles", "directoryRoles", "description")


def read_identity_file(folder: Path) -> Grants:
    """The grants ``folder/identity.json`` describes; ``GrantsUnreadable`` when there is none or
    it is wrong."""
    path = Path(folder) / IDENTITY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise GrantsUnreadable(f"This directory account describes no identity: add {path} with the app roles "
                               "and directory roles its runbooks' identity holds.") from None
    except (OSError, ValueError, RecursionError) as err:
        raise GrantsUnreadable(f"Cannot read the identity file {path}: {err}.") from None
    grants, problem = _parse(data)
    if problem:
        raise GrantsUnreadable(f"The identity file {path} is wrong: {problem}; fix or delete the file.")
    return grants


def _parse(data) -> tuple[Grants | None, str | None]:
    if not isinstance(data, dict):
        return None, "it is not a JSON object"
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        return None, f"unknown key '{unknown[0]}' (known keys: {', '.join(_KEYS)})"
    principal = data.get("principalId")
    if principal is not None and not is_guid(principal):
        return None, "'principalId' is not a GUID"
    app_roles, directory_roles = set(), set()
    for kind, (first, second), into in (("appRoles", ("resource", "value"), app_roles),
                                        ("directoryRoles", ("templateId", "name"), directory_roles)):
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            return None, f"'{kind}' is not a list"
        for index, entry in enumerate(entries):
            where = f"{kind}[{index}]"
            if not isinstance(entry, dict) or set(entry) - {first, second}:
                return None, f"{where} is not an object with '{first}' and '{second}' only"
            if kind == "directoryRoles" and "templateId" not in entry:
                entry = {**entry, "templateId": ""}  # a role a sidecar names without its template id
            elif not is_guid(entry.get(first)):
                return None, f"{where}.{first} is not a GUID"
            if not isinstance(entry.get(second), str) or not entry[second].strip():
                return None, f"{where}.{second} is not a non-empty text"
            into.add((entry[first].lower(), entry[second].strip()))
    return Grants(principal.lower() if principal else None, frozenset(app_roles), frozenset(directory_roles)), None


def add_to_identity_file(folder: Path, *, app_role: tuple[str, str] | None = None,
                         directory_role: tuple[str, str] | None = None) -> bool:
    """Add an app role (resource appId, value) or a directory role (template id or "", name) to
    ``folder/identity.json`` (``rjsync permissions grant`` on a directory account), written
    atomically with everything else in it kept; False when it holds it already."""
    from rjsync.errors import AccountError
    from rjsync.files import atomic_write

    grants = read_identity_file(folder)
    path = Path(folder) / IDENTITY_FILE
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    if app_role is not None:
        resource, value = app_role
        if any(r == resource.lower() and v.casefold() == value.casefold() for r, v in grants.app_roles):
            return False
        data.setdefault("appRoles", []).append({"resource": resource, "value": value})
    if directory_role is not None:
        template, name = directory_role
        if any((template and t == template.lower()) or (not template and n.casefold() == name.casefold())
               for t, n in grants.directory_roles):
            return False
        entry = {"templateId": template, "name": name} if template else {"name": name}
        data.setdefault("directoryRoles", []).append(entry)
    try:
        atomic_write(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    except OSError as err:
        raise AccountError(f"Cannot write the identity file {path}: {err.strerror or err}.") from None
    return True
