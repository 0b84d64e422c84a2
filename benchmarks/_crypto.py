"""The crypto floor: the signing work one credential cannot do without, timed in process with no I/O.

Minting a credential needs, at the very least: a fresh Ed25519 key for the agent, its signature over the
broker's nonce (proof of possession), the broker's check of that signature, and the broker signing the JWT.
Everything a real mint costs beyond this is protocol, storage and network — what the rest of the benchmarks
measure and what the implementation tries to keep small.
"""

from __future__ import annotations

import os
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools.broker._jwt import encode
from agentwrit_tools.broker._keys import SigningKey

__all__ = ["CryptoFloor"]


class CryptoFloor:
    """Call it to do the floor's work once: keygen + sign + verify + JWT encode."""

    def __init__(self) -> None:
        self._broker_key = SigningKey(Ed25519PrivateKey.generate())
        self._nonce = os.urandom(32)
        now = int(time.time())
        self._claims = {
            "iss": "",
            "sub": "spiffe://agentwrit.local/agent/bench/task-1/0123456789abcdef",
            "exp": now + 300,
            "nbf": now,
            "iat": now,
            "jti": "0" * 32,
            "scope": ["read:bench:item-1"],
            "task_id": "task-1",
            "orch_id": "bench",
        }

    def __call__(self, _: int = 0) -> str:
        agent_key = Ed25519PrivateKey.generate()  # the agent's key pair, one per credential
        public = agent_key.public_key()
        signature = agent_key.sign(self._nonce)  # proof of possession
        public.verify(signature, self._nonce)  # the broker checks it
        return encode(self._claims, self._broker_key)  # the broker signs the token
