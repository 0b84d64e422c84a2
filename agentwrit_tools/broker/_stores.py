"""Which backend a broker's settings name: a ``postgresql://`` URL, else the SQLite file (the default)."""

from __future__ import annotations

from ..errors import ConfigurationError
from ._settings import BrokerSettings
from ._store import Store

__all__ = ["make_store", "open_store"]

_POSTGRES_EXTRA = "PostgreSQL needs the 'postgres' extra: pip install 'agentwrit-tools[postgres]'"


def make_store(settings: BrokerSettings) -> Store:
    """The (unopened) store ``settings`` describe.

    Raises:
        ConfigurationError: a PostgreSQL URL without the ``postgres`` extra installed.
    """
    if settings.database_url is None:
        from ._store_sqlite import SqliteStore

        return SqliteStore(settings.db_path, fix_permissions=settings.fix_permissions)
    try:
        from ._store_pg import PostgresStore
    except ImportError:
        raise ConfigurationError(_POSTGRES_EXTRA) from None
    return PostgresStore(
        settings.database_url,
        pool_size=settings.db_pool_size,
        notify=settings.revocation_notify,
        poll_interval=settings.revocation_poll_interval,
        max_staleness=settings.revocation_max_staleness,
    )


async def open_store(settings: BrokerSettings) -> Store:
    """The opened (connected, migrated) store ``settings`` describe."""
    store = make_store(settings)
    await store.open()
    return store
