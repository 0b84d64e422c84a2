"""Token verification: locally from the broker's JWKS with a revocation bound, or remotely — no I/O here.

Why local: a resource server that verifies every request by ``POST /v1/token/validate`` pays a round trip per
request and goes down with the broker. Why it is still safe: a signature proves the broker issued the token,
not that it is still alive, so local verification is only trusted together with a recent copy of the broker's
revocation feed.

**The revocation bound.** Before a local verification is trusted, the feed must have been synced by a request
that *started* at most ``revocation_bound`` seconds earlier (default 1 s); otherwise one delta request
(``GET /v1/revocations?after=<cursor>``) is made first. Because a sync started after a revocation was committed
returns it, a token revoked at time *t* is refused by every verification that starts after
*t* + ``revocation_bound``. The same bound caps the cache of remote ``validate`` answers, so the guarantee does
not depend on which mode is in use. ``revocation_bound=0`` syncs on every verification.

**Feature detection.** JWKS and the feed are extensions: a real AgentWrit broker answers 404 to both. On a 404
from either (or a JWKS with no Ed25519 key) the verifier switches to remote validation for good. ``strict=True``
uses remote validation from the start.

**The feed's credential.** The embedded broker serves its feed to apps and operators only (it names every
revoked task and agent), so the feed is read with the app's bearer — or the operator's — when the client has
one (:attr:`VerifierCore.feed_session`). A client with neither, refused by the feed, verifies remotely.

**Keys.** Cached by ``kid``; an unknown ``kid`` refetches the JWKS at most once per ``jwks_refetch_interval``, so
a flood of forged ``kid`` values cannot turn into a flood of fetches. Only ``EdDSA`` over Ed25519 is accepted, from
keys that pass :mod:`agentwrit_tools.ed25519`; ``exp``/``nbf``/``iat`` are checked with ``leeway`` seconds of skew,
``exp - iat`` against the broker's max TTL; ``iss``/``aud`` when configured.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from ..ed25519 import load_public_key
from ..errors import TokenInvalid, TokenRevoked, Unauthorized
from . import _jws
from ._claims import Claims
from ._models import Jwks, RevocationEntry, RevocationPage, Validation
from ._protocol import RetryPolicy, parse, send
from ._session import TokenSession
from ._steps import Call, Exclusive, Flow, Response

__all__ = ["RevocationSet", "VerifierCore"]

Mode = Literal["unknown", "local", "remote"]
_ABSENT = (404, 405)  # how a broker without the extension answers
_FEED_PAGE = 1000


class RevocationSet:
    """What the revocation feed has told us so far, by level, plus the cursor for the next delta.

    **Memory.** Token-level entries (one per release, renewal or revoked ``jti``) are the only ones that grow
    with the number of calls, and each is useful only while its token could still pass the ``exp`` check. They
    are kept with a *deadline*: the token's ``exp`` when known (our own releases know it from verified claims;
    the broker's feed carries it as an extension field), otherwise ``revoked_at`` + ``max_token_ttl`` — a token
    is issued before it is revoked and no token outlives the contract's global max TTL, so that bound is
    generous but safe (a broker configured with a longer max TTL needs a matching ``max_token_ttl``). An
    unparseable ``revoked_at`` counts from when we learned of the entry. An entry is dropped once its deadline
    is more than ``leeway`` seconds in the past: from then on the ``exp`` check refuses the token anyway. Pruning
    pops a min-heap on insertions and feed syncs, so it costs nothing when there is nothing to drop and is never
    done by ``match``. Agent, task and chain rules are few and kept for good.
    """

    def __init__(
        self, *, leeway: float = 2.0, max_token_ttl: float = 86400.0, wall: Callable[[], float] = time.time
    ) -> None:
        self.after = 0
        self.synced_at: float | None = None
        self._leeway = leeway
        self._max_ttl = max_token_ttl
        self._wall = wall
        self._tokens: dict[str, float] = {}  # jti -> deadline (unix seconds)
        self._deadlines: list[tuple[float, str]] = []  # min-heap; may hold superseded deadlines
        self._targets: dict[str, set[str]] = {"agent": set(), "task": set(), "chain": set()}

    def __len__(self) -> int:
        return len(self._tokens) + sum(len(v) for v in self._targets.values())

    def add(self, level: str, target: str, exp: float | None = None) -> None:
        """Record a revocation we caused ourselves (release, renew, operator revoke) ahead of the feed."""
        if level == "token":
            self._add_token(target, exp if exp is not None else self._wall() + self._max_ttl)
            self.prune()
        else:
            self._targets.setdefault(level, set()).add(target)

    def apply(self, entries: Iterable[RevocationEntry], next_after: int) -> None:
        for entry in entries:
            # An unknown level from a newer broker is kept: it cannot match anything, and dropping it silently
            # would hide the gap. Revocations only ever add, so applying a page twice is harmless.
            if entry.level == "token":
                self._add_token(entry.target, self._deadline(entry))
            else:
                self._targets.setdefault(entry.level, set()).add(entry.target)
        self.after = max(self.after, next_after)
        self.prune()

    def prune(self) -> None:
        """Forget token entries whose token can no longer pass the ``exp`` check."""
        cutoff = self._wall() - self._leeway
        heap, tokens = self._deadlines, self._tokens
        while heap and heap[0][0] < cutoff:
            deadline, jti = heapq.heappop(heap)
            if tokens.get(jti) == deadline:  # not superseded by a later deadline for the same jti
                del tokens[jti]

    def _add_token(self, jti: str, deadline: float) -> None:
        known = self._tokens.get(jti)
        if known is None or deadline > known:
            self._tokens[jti] = deadline
            heapq.heappush(self._deadlines, (deadline, jti))

    def _deadline(self, entry: RevocationEntry) -> float:
        if entry.exp is not None:
            return float(entry.exp)
        revoked_at = _epoch_seconds(entry.revoked_at)
        return (revoked_at if revoked_at is not None else self._wall()) + self._max_ttl

    def match(self, claims: Claims) -> str | None:
        """The level at which ``claims`` is revoked, or None."""
        t = self._targets
        if claims.jti in self._tokens:
            return "token"
        if claims.sub in t["agent"]:
            return "agent"
        if claims.task_id and claims.task_id in t["task"]:
            return "task"
        root = claims.chain_root
        if root is not None and root in t["chain"]:
            return "chain"
        return None


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.\d+)?(?:[Zz]|([+-])(\d\d):(\d\d))")


def _epoch_seconds(text: str) -> float | None:
    """Whole seconds of an RFC 3339 timestamp, or None when it is not one (Python 3.10 lacks a full parser)."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    try:
        base = datetime.strptime(f"{match[1]}T{match[2]}", "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    offset = (int(match[4]) * 3600 + int(match[5]) * 60) * (1 if match[3] == "+" else -1) if match[3] else 0
    return base.timestamp() - offset


def _check_shape(token: object) -> None:
    """A compact JWS is non-empty ASCII of sane length; anything else is refused before any parsing or I/O."""
    if not isinstance(token, str) or not token or len(token) > 16384 or not token.isascii():
        raise TokenInvalid(reason="malformed")


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VerifierCore:
    """State and flows of token verification, shared by ``Broker``, ``AsyncBroker`` and the verifiers.

    Args:
        policy: retry policy for JWKS, feed and validate calls (all idempotent).
        strict: always ask the broker (``POST /v1/token/validate``).
        revocation_bound: maximum age in seconds of the revocation knowledge a verification relies on.
        leeway: clock skew tolerated on ``exp``/``nbf``/``iat``, in seconds.
        issuer: required ``iss`` (None: not checked).
        audience: a value that must be in ``aud`` (None: not checked).
        jwks_refetch_interval: minimum seconds between JWKS fetches caused by unknown ``kid`` values.
        cache_size: maximum number of remote answers kept (each for at most ``revocation_bound``).
        max_token_ttl: the broker's global max TTL, bounding how long a token-level revocation with no known
            ``exp`` is kept after its ``revoked_at`` (see :class:`RevocationSet`).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        strict: bool = False,
        revocation_bound: float = 1.0,
        leeway: float = 2.0,
        issuer: str | None = None,
        audience: str | None = None,
        jwks_refetch_interval: float = 10.0,
        cache_size: int = 1024,
        max_token_ttl: float = 86400.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if revocation_bound < 0 or leeway < 0:
            raise ValueError("revocation_bound and leeway must not be negative")
        self._policy = policy
        self.mode: Mode = "remote" if strict else "unknown"
        self.revocation_bound = revocation_bound
        self._leeway = leeway
        self._issuer = issuer
        self._audience = audience
        self._refetch = jwks_refetch_interval
        self._max_token_ttl = max_token_ttl
        self._clock = clock
        self._wall = wall
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._jwks_at: float | None = None
        self.revocations = RevocationSet(leeway=leeway, max_token_ttl=max_token_ttl, wall=wall)
        self._answers: OrderedDict[bytes, tuple[float, Claims]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()  # threads of a sync Broker share the cache; never held across I/O
        # The bearer sent to the revocation feed, which the embedded broker serves to apps and operators only.
        self.feed_session: TokenSession | None = None

    @property
    def remote(self) -> bool:
        """True once verification is remote: strict mode, or an extension turned out to be missing."""
        return self.mode == "remote"

    # ---- entry points ------------------------------------------------------------------------------------

    def verify(self, token: str, *, check_revocation: bool = True, audience: str | None = None) -> Flow[Claims]:
        """Verify ``token`` and return its claims; raise :class:`TokenInvalid` (or :class:`TokenRevoked`).

        ``check_revocation=False`` is for a token the broker handed us a moment ago (mint, renew, delegate):
        there the question is *what* was granted, and the signature answers it without a feed sync.
        ``audience`` replaces the configured one for this token (a credential minted for one resource).
        """
        _check_shape(token)
        if not self.remote:
            parsed = _jws.parse(token)
            key = self._keys.get(parsed.kid)
            if key is None:
                key = yield from self._key_for(parsed.kid)
            if not self.remote:
                if key is None:
                    raise TokenInvalid(reason="unknown signing key")
                claims = self._decode(parsed, key, audience)
                if not check_revocation:
                    return claims
                if self._feed_stale():
                    yield Exclusive("revocation-feed", self._sync_feed())
                if not self.remote:
                    level = self.revocations.match(claims)
                    if level is not None:
                        raise TokenRevoked(level=level)
                    return claims
        claims = yield from self.validate(token, use_cache=check_revocation, audience=audience)
        level = self.revocations.match(claims) if check_revocation else None
        if level is not None:
            raise TokenRevoked(level=level)
        return claims

    def note_revoked(self, level: str, target: str, exp: float | None = None) -> None:
        """Refuse tokens this process itself has just killed, without waiting for the feed or the cache.

        The bound above holds for revocations made anywhere; for our own releases, renewals and operator calls
        we know at once, so a ``release()`` followed by ``verify()`` in the same process never succeeds.
        ``exp`` (a token's verified expiry) lets the entry be forgotten once the token has expired anyway.
        """
        self.revocations.add(level, target, exp)

    def validate(self, token: str, *, use_cache: bool = False, audience: str | None = None) -> Flow[Claims]:
        """Ask the broker. With ``use_cache``, reuse a valid answer younger than ``revocation_bound``.

        ``audience``: see :meth:`verify`.
        """
        _check_shape(token)
        digest = hashlib.sha256(token.encode()).digest()
        if use_cache:
            with self._cache_lock:
                hit = self._answers.get(digest)
            if hit is not None and self._clock() < hit[0] and hit[1].exp + self._leeway > self._wall():
                self._check_audience(hit[1], audience)
                return hit[1]
        started = self._clock()
        call = Call("POST", "/v1/token/validate", body={"token": token}, idempotent=True)
        answer = parse(Validation, call, (yield from send(call, self._policy)))
        if not answer.valid or answer.claims is None:
            raise TokenInvalid(reason="refused by the broker")
        self._check_audience(answer.claims, audience)
        if self._issuer is not None and answer.claims.iss != self._issuer:
            raise TokenInvalid(reason="issuer")
        if self.revocation_bound > 0:
            with self._cache_lock:
                self._answers[digest] = (started + self.revocation_bound, answer.claims)
                self._answers.move_to_end(digest)
                while len(self._answers) > self._cache_size:
                    self._answers.popitem(last=False)
        return answer.claims

    def warm(self) -> Flow[None]:
        """Fetch the broker's keys ahead of the first verification (finding out whether it publishes any at all),
        so a caller's first token is verified without that round trip on its path."""
        if self.mode == "unknown" and not self._recently_fetched():
            yield Exclusive("jwks", self._fetch_keys(""))

    # ---- keys --------------------------------------------------------------------------------------------

    def _key_for(self, kid: str) -> Flow[Ed25519PublicKey | None]:
        if self._recently_fetched():
            return None
        key: Ed25519PublicKey | None = yield Exclusive("jwks", self._fetch_keys(kid))
        return key

    def _recently_fetched(self) -> bool:
        return self._jwks_at is not None and self._clock() - self._jwks_at < self._refetch

    def _fetch_keys(self, kid: str) -> Flow[Ed25519PublicKey | None]:
        if kid in self._keys or self._recently_fetched():
            return self._keys.get(kid)
        call = Call("GET", "/.well-known/jwks.json", idempotent=True)
        response = yield from send(call, self._policy, accept=_ABSENT)
        self._jwks_at = self._clock()
        if response.status in _ABSENT:
            self.mode = "remote"
            return None
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in parse(Jwks, call, response).keys:
            if (
                jwk.kty != "OKP"
                or jwk.crv != "Ed25519"
                or jwk.alg not in (None, "EdDSA")
                or jwk.use not in (None, "sig")
            ):
                continue
            try:
                keys[jwk.kid] = load_public_key(_b64url(jwk.x))
            except ValueError:
                continue
        if not keys:
            self.mode = "remote"  # nothing we can verify with: the broker's word is all there is
            return None
        self._keys = keys
        if self.mode == "unknown":
            self.mode = "local"
        return keys.get(kid)

    def _decode(self, parsed: _jws.Jws, key: Ed25519PublicKey, audience: str | None = None) -> Claims:
        payload = parsed.verify(key)
        _jws.check_times(
            payload, now=self._wall(), leeway=self._leeway, issuer=self._issuer, max_ttl=self._max_token_ttl
        )
        try:
            claims = Claims.model_validate(payload)
        except ValidationError:
            raise TokenInvalid(reason="claims do not follow the contract") from None
        self._check_audience(claims, audience)
        return claims

    def _check_audience(self, claims: Claims, audience: str | None = None) -> None:
        required = audience if audience is not None else self._audience
        if required is not None and required not in claims.aud:
            raise TokenInvalid(reason="audience")

    # ---- revocation feed ---------------------------------------------------------------------------------

    def _feed_page(self, call: Call) -> Flow[Response | None]:
        """One feed request, with the app's (or operator's) bearer when this client has one.

        None when the feed is not ours to read: absent (a broker without the extension), or refused because the
        broker guards it and we hold no credential it accepts (a resource server configured with the URL alone).
        Either way verification turns remote, which needs no credential and is never less strict.
        """
        session = self.feed_session
        try:
            if session is None:
                response = yield from send(call, self._policy, accept=(*_ABSENT, 401, 403))
            else:
                response = yield from session.call(lambda token: replace(call, bearer=token), accept=(*_ABSENT, 403))
        except Unauthorized:  # the session's login or its retry was refused
            return None
        return None if response.status in (*_ABSENT, 401, 403) else response

    def _feed_stale(self) -> bool:
        synced = self.revocations.synced_at
        return synced is None or self._clock() - synced >= self.revocation_bound

    def _sync_feed(self) -> Flow[None]:
        if not self._feed_stale():
            return  # a sync that started after we asked has just finished
        started = self._clock()
        while True:
            params = {"after": self.revocations.after, "limit": _FEED_PAGE}
            call = Call("GET", "/v1/revocations", params=params, idempotent=True)
            response = yield from self._feed_page(call)
            if response is None:
                self.mode = "remote"
                return
            page = parse(RevocationPage, call, response)
            self.revocations.apply(page.revocations, page.next_after)
            if not page.has_more or not page.revocations:
                break
        self.revocations.synced_at = started
