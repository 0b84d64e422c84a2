"""The one check every accepted Ed25519 public key goes through (agentwrit_tools.ed25519)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from agentwrit_tools.ed25519 import encoding_problem, load_public_key, public_key_problem

P = 2**255 - 19
NEUTRAL = bytes([1]) + bytes(31)


def _encode(y: int, sign: int = 0) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


def _torsion_ys() -> set[int]:
    """The y coordinates of the 8-torsion, from the curve equation alone (independent of the module's arithmetic).

    Order 1: y = 1; order 2: y = -1; order 4: y = 0; order 8: the roots of d·y⁴ + 2y² - 1 = 0 (doubling such a
    point gives y = 0), i.e. y² = (-1 ± sqrt(1 + d)) / d.
    """
    d = (-121665 * pow(121666, P - 2, P)) % P
    ys = {0, 1, P - 1}
    for y2 in ((-1 + s) * pow(d, P - 2, P) % P for s in _sqrts((1 + d) % P)):
        ys.update(_sqrts(y2))
    return ys


def _sqrts(a: int) -> list[int]:
    root = pow(a, (P + 3) // 8, P)
    if (root * root - a) % P:
        root = root * pow(2, (P - 1) // 4, P) % P
    return [root, P - root] if (root * root - a) % P == 0 else []


def test_all_eight_small_order_points_are_refused() -> None:
    ys = _torsion_ys()
    assert len(ys) == 5  # 1, -1, 0 and two y values of order 8 (each with two signs: 8 points in all)
    refused = 0
    for y in ys:
        for sign in (0, 1):
            if y in (1, P - 1) and sign:
                continue  # x = 0 has no sign: that spelling is non-canonical (tested below)
            assert public_key_problem(_encode(y, sign)) == "the public key is a point of small order"
            refused += 1
    assert refused == 8


@pytest.mark.parametrize(
    "raw",
    [_encode(P), _encode(P + 1), _encode(P + 18), _encode(2**255 - 1), _encode(1, 1), _encode(P - 1, 1)],
)
def test_non_canonical_encodings_are_refused(raw: bytes) -> None:
    assert public_key_problem(raw) == "the public key is not canonically encoded"
    with pytest.raises(ValueError, match="canonical"):
        load_public_key(raw)


def test_wrong_sizes_and_points_off_the_curve_are_refused() -> None:
    assert public_key_problem(NEUTRAL[:31]) is not None
    assert public_key_problem(NEUTRAL + b"\x00") is not None
    assert public_key_problem(_encode(2)) == "not a curve point"


@given(st.binary(min_size=32, max_size=32))
def test_genuine_keys_are_accepted_and_load(seed: bytes) -> None:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = public.public_bytes_raw()
    assert public_key_problem(raw) is None
    assert load_public_key(raw).public_bytes_raw() == raw


def _full_or_curve(raw: bytes) -> str | None:
    """What ``encoding_problem`` must say: the full check's answer, except that "not a curve point" is left open."""
    problem = public_key_problem(raw)
    return None if problem == "not a curve point" else problem


@given(st.binary(min_size=32, max_size=32))
def test_the_check_without_a_square_root_agrees_with_the_full_one(raw: bytes) -> None:
    assert encoding_problem(raw) == _full_or_curve(raw)


def test_the_check_without_a_square_root_names_every_refused_spelling() -> None:
    spellings = [_encode(y, sign) for y in _torsion_ys() for sign in (0, 1)]
    spellings += [_encode(P), _encode(P + 18), _encode(2**255 - 1), _encode(2), _encode(5, 1), NEUTRAL[:31]]
    for raw in spellings:
        assert encoding_problem(raw) == _full_or_curve(raw), raw.hex()
    assert encoding_problem(_encode(2)) is None  # off the curve: left to the signature, which cannot verify
    genuine = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert encoding_problem(genuine) is None
