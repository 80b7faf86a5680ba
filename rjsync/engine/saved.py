"""Saved plans (``rjsync plan --out``): the plan document on disk, and refusing it when stale.

A saved plan is the versioned plan document (``Plan.to_json``) with fingerprints of the catalog
and the account snapshot it was computed from. ``rjsync apply PLANFILE`` loads it, re-reads
the source and checks it (``check_source_fresh``) before it opens the account, then re-reads the
account and checks that (``check_account_fresh``): a plan is applied only while neither changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rjsync.accounts.base import Snapshot
from rjsync.accounts.receipts import Receipt
from rjsync.catalog.model import Catalog
from rjsync.engine import render
from rjsync.engine.plan import DELETE, FORMAT_VERSION, RUNBOOK, Plan
from rjsync.errors import PlanError, RjsyncError
from rjsync.files import atomic_write


def save_plan(plan: Plan, path: str) -> None:
    """Write the plan document atomically (a reader never sees half of it)."""
    try:
        atomic_write(Path(path), render.to_json(plan.to_json()).encode("utf-8"), regular_only=True)
    except OSError as err:
        raise RjsyncError(f"Cannot write the plan to {path}: {err.strerror or err}.") from err


def load_plan(path: str) -> Plan:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"The plan file {path} does not exist.") from None
    except (OSError, ValueError) as err:
        raise PlanError(f"Cannot read the plan file {path}: {err}.") from None
    except RecursionError:  # the JSON decoder recurses once per level
        raise PlanError(f"{path} is not a valid rjsync plan: its JSON is nested too deeply.") from None
    if not isinstance(doc, dict) or "format_version" not in doc:
        raise PlanError(f"{path} is not an rjsync plan (no format_version); make one with rjsync plan --out.")
    if doc["format_version"] != FORMAT_VERSION:
        raise PlanError(f"{path} is a plan of format version {doc['format_version']}; this rjsync applies "
                        f"version {FORMAT_VERSION}. Plan again with this version.")
    try:
        plan = Plan.from_json(doc)
        _check_types(plan)
        plan.to_json()  # every part of it can be shown and compared
        return plan
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise PlanError(f"{path} is not a valid rjsync plan ({type(err).__name__}: {err}).") from None
    except RecursionError:
        raise PlanError(f"{path} is not a valid rjsync plan: a value is nested too deeply.") from None
    except RjsyncError as err:  # a policy no sync may have, e.g. an empty prefix
        raise PlanError(f"{path} is not a valid rjsync plan: {err.message}") from None


def _check_types(plan: Plan) -> None:
    """TypeError unless the parts a saved plan is applied by have their types."""
    source = plan.source
    if not isinstance(source, dict) or not isinstance(source.get("location"), str):
        raise TypeError("source must be a mapping with a location")
    if not all(isinstance(source.get(k), (str, type(None))) for k in ("kind", "ref", "commit")):
        raise TypeError("source kind, ref and commit must be text")
    if not isinstance(plan.target, str):
        raise TypeError("target must be text")
    if not isinstance(plan.fingerprints, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in plan.fingerprints.items()):
        raise TypeError("fingerprints must be a mapping of text")
    for change in plan.changes:
        if (not all(isinstance(v, str) for v in (change.kind, change.action, change.name, change.reason))
                or not all(isinstance(v, (dict, type(None))) for v in (change.before, change.after))
                or not all(isinstance(v, str) for v in (*change.aspects, *change.warnings, *change.requires))):
            raise TypeError("a change has values of the wrong type")
    if not isinstance(plan.environment, (dict, type(None))):
        raise TypeError("environment must be a mapping")


def check_source_fresh(plan: Plan, catalog: Catalog, path: str) -> None:
    """Refuse the plan saved at ``path`` when ``catalog`` (the source re-read) changed since."""
    if catalog_fingerprint(catalog) != plan.fingerprints.get("catalog"):
        raise PlanError(f"The plan is stale: the source {plan.source['location']} changed since {path} was made. "
                        "Plan again.")


def check_account_fresh(plan: Plan, snapshot: Snapshot, path: str) -> None:
    """Refuse the plan saved at ``path`` when ``snapshot`` (the account re-read) changed since."""
    if snapshot_fingerprint(snapshot) != plan.fingerprints.get("snapshot"):
        hint = (" Every change in it is already in the account: was it applied before?"
                if already_applied(plan, snapshot) else "")
        raise PlanError(f"The plan is stale: the account {plan.target} changed since {path} was made."
                        f"{hint} Plan again.")


#: What a fresh plan must repeat exactly for the saved one to be applied (its fingerprints were
#: checked already; the source and target are what the fresh plan was made from).
_COMPARED = ("policy", "environment", "changes", "drift", "skipped", "summary", "diagnostics")


def check_same_plan(plan: Plan, fresh: Plan, path: str) -> None:
    """Refuse the plan saved at ``path`` unless ``fresh`` (planned again now, with its policy)
    has exactly its changes and policy: a saved plan file edited by hand is never applied."""
    saved, now = plan.to_json(), fresh.to_json()
    differences = [*_change_differences(saved["changes"], now["changes"])]
    differences += [f"a different {key}" for key in _COMPARED
                    if key != "changes" and saved.get(key) != now.get(key)]
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise PlanError(f"The plan is stale: planning again now does not give {path} ({shown}). Plan again.")


def _change_differences(saved: list[dict], now: list[dict]):
    """'X is not in a fresh plan', 'X differs', 'X is missing' for changes (by kind and name)."""
    def key(change: dict) -> str:
        return f"{change.get('action')} {change.get('kind')} {change.get('name')}"

    fresh = {key(c): c for c in now}
    old = {key(c): c for c in saved}
    for name, change in old.items():
        if name not in fresh:
            yield f"{name} is not in a fresh plan"
        elif fresh[name] != change:
            yield f"{name} differs"
    for name in fresh:
        if name not in old:
            yield f"{name} is missing from it"
    if not [k for k in old if k in fresh] == [k for k in fresh if k in old] or len(old) != len(saved):
        yield "the order of its changes differs"


def already_applied(plan: Plan, snapshot: Snapshot) -> bool:
    """Whether ``snapshot`` holds every runbook change of ``plan``: each written runbook carries
    the receipt of its planned content, each deleted one is gone (modules are not compared)."""
    runbooks = [c for c in plan.changes if c.kind == RUNBOOK]
    if not runbooks:
        return False
    for change in runbooks:
        live = snapshot.runbook(change.name)
        if change.action == DELETE:
            if live is not None:
                return False
        elif live is None or Receipt.of(live.tags).sha256 != (change.after or {}).get("sha256"):
            return False
    return True


# -- fingerprints ----------------------------------------------------------------------------------


def snapshot_fingerprint(snapshot: Snapshot) -> str:
    """sha256 over everything a plan reads from the account, in a canonical form."""
    data = {
        "runbooks": [[r.name, r.runbook_type, r.runtime_environment, r.state, r.description,
                      sorted((r.tags or {}).items()),
                      r.last_modified.isoformat() if r.last_modified else None]
                     for r in sorted(snapshot.runbooks, key=lambda r: r.name.lower())],
        "modules": [[m.name, m.version, m.provisioning_state] for m in snapshot.modules],
        "environments": [[e.name, e.language, e.version, [[p.name, p.version, p.provisioning_state]
                                                          for p in e.packages]]
                         for e in snapshot.runtime_environments],
    }
    return _sha(data)


def catalog_fingerprint(catalog: Catalog) -> str:
    """sha256 over the catalog without where it was read from (a re-read gives the same value)."""
    data = catalog.to_json()
    data.pop("source", None)
    return _sha(data)


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
