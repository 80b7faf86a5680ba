"""What a sync may do: the policy a manifest or the command line sets.

A ``Policy`` is a plain value. The planner reads it; nothing in it is I/O. The rest of a sync's
settings (source, target, Azure options, concurrency) are in ``rjsync.settings``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rjsync.accounts.base import RJ_DEFAULT_PACKAGES, RJ_RUNTIME_ENVIRONMENT
from rjsync.catalog.naming import DEFAULT_CONTEXTS, OWNED_PREFIX, check_prefix

#: ``runtime`` value for classic Windows PowerShell 5.1 runbooks (runbook type ``PowerShell``,
#: no runtime environment, modules imported into the account).
CLASSIC = "classic"

DEFAULT_MAX_DELETIONS = 10

#: ``default_packages`` of a policy that names none: what the portal gives PowerShell 7.4.
DEFAULT_PACKAGES: tuple[tuple[str, str], ...] = tuple(RJ_DEFAULT_PACKAGES.items())


@dataclass(frozen=True)
class Policy:
    """How a catalog maps onto an account.

    - ``prefix``: runbooks whose name starts with it (case-insensitive) are owned by the sync.
    - ``contexts``: top-level folders of the source that hold runbooks.
    - ``exclude``: glob patterns (``fnmatch``, case-insensitive) matched against runbook names
      and source paths; a match is never created, updated or deleted.
    - ``runtime``: the runtime environment synced runbooks run in (created when missing), or
      ``classic`` for Windows PowerShell 5.1 runbooks with account modules.
    - ``max_deletions``: more deletions than this are not applied without an explicit override.
    - ``modules``: import and upgrade the modules the runbooks require.
    - ``keep_drifted``: leave runbooks edited in the portal alone instead of overwriting them.
    - ``default_packages``: (name, version) pairs a runtime environment rjsync creates gets as
      its default packages (default: Az, as the portal gives one); an existing environment's
      are compared (names without regard to case) and a difference reported, never changed.
    """

    prefix: str = OWNED_PREFIX
    contexts: tuple[str, ...] = DEFAULT_CONTEXTS
    exclude: tuple[str, ...] = ()
    runtime: str = RJ_RUNTIME_ENVIRONMENT
    max_deletions: int = DEFAULT_MAX_DELETIONS
    modules: bool = True
    keep_drifted: bool = False
    default_packages: tuple[tuple[str, str], ...] = DEFAULT_PACKAGES

    def __post_init__(self) -> None:
        check_prefix(self.prefix)  # however the policy was made: flag, manifest, saved plan, service

    @property
    def classic(self) -> bool:
        return self.runtime.lower() == CLASSIC

    @property
    def runtime_environment(self) -> str | None:
        """The runtime environment runbooks go into, or None for classic runbooks."""
        return None if self.classic else self.runtime

    def to_json(self) -> dict:
        return {
            "prefix": self.prefix,
            "contexts": list(self.contexts),
            "exclude": list(self.exclude),
            "runtime": self.runtime,
            "max_deletions": self.max_deletions,
            "modules": self.modules,
            "keep_drifted": self.keep_drifted,
            "default_packages": dict(self.default_packages),
        }

    @classmethod
    def from_json(cls, data: dict) -> Policy:
        """The policy of a plan document; TypeError when a value has the wrong type."""
        names = ("contexts", "exclude")
        if (not all(isinstance(data[k], list) and all(isinstance(v, str) for v in data[k]) for k in names)
                or not isinstance(data["runtime"], str) or isinstance(data["max_deletions"], bool)
                or not isinstance(data["max_deletions"], int) or data["max_deletions"] < 0
                or not all(isinstance(data[k], bool) for k in ("modules", "keep_drifted"))
                or not isinstance(data.get("default_packages") or {}, dict)):
            raise TypeError("policy values of the wrong type")
        return cls(
            prefix=data["prefix"],
            contexts=tuple(data["contexts"]),
            exclude=tuple(data["exclude"]),
            runtime=data["runtime"],
            max_deletions=int(data["max_deletions"]),
            modules=bool(data["modules"]),
            keep_drifted=bool(data["keep_drifted"]),
            # absent from plans saved before the setting existed: the default
            default_packages=(DEFAULT_PACKAGES if data.get("default_packages") is None
                              else tuple((str(k), str(v)) for k, v in data["default_packages"].items())),
        )
