"""Helpers shared by the client integration tests (a uniquely named module: ``conftest`` names collide)."""

from __future__ import annotations

import itertools
from typing import Any

_names = itertools.count()


def new_app(running: Any, scopes: list[str] | None = None, token_ttl: int | None = None) -> Any:
    """An app of its own per test: app logins are rate-limited per client_id (burst 3)."""
    return running.create_app(f"client-{next(_names)}", scopes or ["read:data:*", "write:data:*"], token_ttl)
