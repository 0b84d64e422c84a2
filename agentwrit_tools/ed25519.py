"""Ed25519 public keys the project accepts: on the curve, canonically encoded, and not of small order.

Pure (no I/O), like :mod:`agentwrit_tools.scopes`, so every place that takes a public key from outside — agent
registration, the client's JWKS, delegates and key-bound tokens later — checks it with this one function.

Why: OpenSSL's Ed25519 verification does not refuse *small-order* public keys. For such a key ``A`` (``8A`` is the
neutral point) a signature can be forged without any private key — with ``A`` the neutral point itself, the
"universal" signature ``R = A, S = 0`` verifies for every message — so a challenge-response over such a key proves
nothing. The eight points of order dividing 8 are refused, and so are encodings that are not canonical (``y >= p``,
or the sign bit set on ``x = 0``): two byte strings for one point would give one key two identities.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["PUBLIC_KEY_SIZE", "encoding_problem", "load_public_key", "public_key_problem"]

PUBLIC_KEY_SIZE = 32

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int) -> int | None:
    """The x coordinate of the point with this ``y`` and sign bit (RFC 8032, 5.1.3), or None when there is none.

    One exponentiation: x = u·v³·(u·v⁷)^((p-5)/8) with u = y² - 1, v = d·y² + 1 is a square root of u/v when one
    exists (possibly off by a factor sqrt(-1)), so no separate inversion is needed.
    """
    y2 = y * y % _P
    u = (y2 - 1) % _P
    v = (_D * y2 + 1) % _P
    v3 = v * v * v % _P
    x = u * v3 * pow(u * v3 * v3 * v % _P, (_P - 5) // 8, _P) % _P
    vx2 = v * x * x % _P
    if vx2 != u:
        if vx2 != (-u) % _P:
            return None
        x = x * _SQRT_M1 % _P
    if x == 0 and sign:
        return None  # x = 0 has no negative: the sign bit set there is a second encoding
    return _P - x if (x & 1) != sign else x


def _has_small_order(x: int, y: int) -> bool:
    """True when ``8·(x, y)`` is the neutral point: three doublings in projective coordinates (a = -1)."""
    px, py, pz = x, y, 1
    for _ in range(3):
        b = (px + py) ** 2 % _P
        c = px * px % _P
        d = py * py % _P
        e = -c % _P
        f = (e + d) % _P
        j = (f - 2 * pz * pz) % _P
        px, py, pz = (b - c - d) * j % _P, f * (e - d) % _P, f * j % _P
    return px % _P == 0 and (py - pz) % _P == 0


def _torsion_ys() -> frozenset[int]:
    """The y coordinates of the eight points of order dividing 8: 1 (order 1), -1 (order 2), 0 (order 4), and the
    square roots of the two roots of d·y⁴ + 2y² - 1 (order 8, whose double has y = 0)."""
    ys = {0, 1, _P - 1}
    d_inv = pow(_D, _P - 2, _P)
    for s in _square_roots((1 + _D) % _P):
        ys.update(_square_roots((s - 1) * d_inv % _P))
    return frozenset(ys)


def _square_roots(a: int) -> list[int]:
    root = pow(a, (_P + 3) // 8, _P)
    if (root * root - a) % _P:
        root = root * _SQRT_M1 % _P
    return [root, _P - root] if (root * root - a) % _P == 0 else []


_TORSION_YS = _torsion_ys()


def encoding_problem(raw: bytes) -> str | None:
    """What :func:`public_key_problem` finds without a square root: the size, an encoding that is not canonical, a
    point of small order (by its ``y``: the 8-torsion has five). Whenever this names a problem it is the one the
    full check names.

    It leaves one question open — is ``raw`` a point of the curve at all? — which costs an exponentiation, and which
    a signature verification answers anyway: a byte string that is not a point verifies no signature. So this is
    for a key that is about to verify one (agent registration, where it saves a tenth of the broker's work per
    credential); anywhere else use :func:`public_key_problem`.
    """
    if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_SIZE:
        return f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes"
    sign = raw[31] >> 7
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P or (sign and y in (1, _P - 1)):
        return "the public key is not canonically encoded"
    if y in _TORSION_YS:
        return "the public key is a point of small order"
    return None


def public_key_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not an acceptable Ed25519 public key, or None when it is.

    The reasons are fixed phrases (safe to log or send back): wrong size, a non-canonical encoding, not a point
    on the curve, a point of small order.
    """
    if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_SIZE:
        return f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes"
    sign = raw[31] >> 7
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        return "the public key is not canonically encoded"
    x = _recover_x(y, sign)
    if x is None:
        return "the public key is not canonically encoded" if sign and y in (1, _P - 1) else "not a curve point"
    if _has_small_order(x, y):
        return "the public key is a point of small order"
    return None


def load_public_key(raw: bytes) -> Ed25519PublicKey:
    """The key behind ``raw`` once :func:`public_key_problem` finds nothing wrong with it.

    Raises:
        ValueError: the key is refused (the message is one of the fixed reasons).
    """
    problem = public_key_problem(raw)
    if problem is not None:
        raise ValueError(problem)
    return Ed25519PublicKey.from_public_bytes(raw)
