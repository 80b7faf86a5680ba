"""Credentials of the sync service: hashed at rest, compared in constant time.

A stored secret (a user's password or a bearer token) is ``pbkdf2_sha256$ITERATIONS$SALT$HASH``
(salt and hash in hex), made by ``hash_secret`` or ``rjsync serve --hash-secret``. The clear
secret is never stored, logged or put in a stream.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

SCHEME = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 200_000
MIN_ITERATIONS = 100_000  # a weaker stored hash is refused when the service starts
MIN_SALT = 16  # bytes
MAX_ITERATIONS = 10_000_000  # more would stall every request (and overflows PBKDF2 far above)


def hash_secret(secret: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def parse_hash(stored: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, digest) of a stored hash; ValueError naming the expected form."""
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError(f"not a {SCHEME}$ITERATIONS$SALT$HASH value (make one with rjsync serve --hash-secret)")
    try:
        iterations, salt, digest = int(parts[1]), bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        raise ValueError("its iterations, salt or hash is malformed") from None
    if iterations < 1 or not salt or len(digest) != 32:
        raise ValueError("its iterations, salt or hash is malformed")
    if iterations > MAX_ITERATIONS:
        raise ValueError(f"a hash of {iterations:,} iterations, more than the {MAX_ITERATIONS:,} the service allows")
    return iterations, salt, digest


def check_strength(stored: str) -> None:
    """ValueError unless ``stored`` is well formed and strong enough to keep a stolen copy useless."""
    iterations, salt, _ = parse_hash(stored)
    if iterations < MIN_ITERATIONS or len(salt) < MIN_SALT:
        raise ValueError(f"a weak hash ({iterations:,} iteration{'' if iterations == 1 else 's'}, a {len(salt)}-byte salt): the service needs at "
                         f"least {MIN_ITERATIONS:,} iterations and a {MIN_SALT}-byte salt (make one with rjsync "
                         "serve --hash-secret)")


def verify_secret(secret: str, stored: str) -> bool:
    iterations, salt, digest = parse_hash(stored)
    candidate = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(candidate, digest)


@dataclass(frozen=True)
class Principal:
    """Who is calling, which accounts (manifest names, lowercase; ``*`` = all) they may sync, and
    the roles of the runbook permissions they hold (which runbooks they may start)."""

    name: str
    accounts: frozenset[str]
    roles: frozenset[str] = frozenset()

    def may(self, account: str) -> bool:
        return "*" in self.accounts or account.lower() in self.accounts


@dataclass(frozen=True)
class Credential:
    principal: Principal
    stored: str  # the hash


class Authenticator:
    """Checks Basic and Bearer credentials. Successful checks are remembered (by a keyed digest of
    what was presented, in memory only) so that polling does not pay for PBKDF2 each time."""

    def __init__(self, users: dict[str, Credential], tokens: list[Credential]) -> None:
        self.users = {name: cred for name, cred in users.items()}
        self.tokens = list(tokens)
        self._key = secrets.token_bytes(32)
        self._ok: dict[bytes, Principal] = {}
        self._lock = threading.Lock()
        # unknown users are checked against a hash as costly as the costliest stored one, so the
        # time of an answer does not tell whether the user exists
        costs = [parse_hash(c.stored)[0] for c in self.users.values()]
        self._dummy = hash_secret(secrets.token_hex(8), iterations=max(costs) if costs else DEFAULT_ITERATIONS)

    def remembered(self, basic: tuple[str, str] | None = None, bearer: str | None = None) -> Principal | None:
        """The principal of credentials checked successfully before (no PBKDF2: cheap enough for
        the event loop), else None: then ``basic``/``bearer`` decide."""
        if basic is not None:
            key = self._digest("basic", f"{basic[0]}\0{basic[1]}")
        elif bearer is not None:
            key = self._digest("bearer", bearer)
        else:
            return None
        with self._lock:
            return self._ok.get(key)

    def _digest(self, kind: str, presented: str) -> bytes:
        return hmac.new(self._key, f"{kind}\0{presented}".encode(), hashlib.sha256).digest()

    def _remember(self, kind: str, presented: str, check) -> Principal | None:
        key = self._digest(kind, presented)
        with self._lock:
            found = self._ok.get(key)
        if found is not None:
            return found
        found = check()
        if found is not None:
            with self._lock:
                if len(self._ok) > 10_000:
                    self._ok.clear()
                self._ok[key] = found
        return found

    def basic(self, user: str, password: str) -> Principal | None:
        def check() -> Principal | None:
            cred = self.users.get(user)
            ok = verify_secret(password, cred.stored if cred else self._dummy)
            return cred.principal if cred and ok else None

        return self._remember("basic", f"{user}\0{password}", check)

    def bearer(self, token: str) -> Principal | None:
        def check() -> Principal | None:
            found = None
            for cred in self.tokens:  # every one, so the time does not tell which matched
                if verify_secret(token, cred.stored) and found is None:
                    found = cred.principal
            return found

        return self._remember("bearer", token, check)
