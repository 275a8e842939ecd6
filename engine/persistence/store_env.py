"""The store settings: the eventsourcing environment for the store the settings name.

Only the settings object configures the store (`Ledger.construct_env` reads no stray
environment variable); this is where its fields become the library's keys.
"""

from __future__ import annotations

from pathlib import Path

from klippfisk.engine.persistence.store_errors import StoreUnavailable
from klippfisk.engine.settings import Settings

__all__ = ["POSTGRES_FACTORY", "SQLITE_FACTORY", "store_env"]

# The factories the library loads by topic (its PERSISTENCE_MODULE key).
SQLITE_FACTORY = "klippfisk.engine.persistence.sqlite_store:SQLiteStoreFactory"
POSTGRES_FACTORY = "klippfisk.engine.persistence.postgres_store:PostgresStoreFactory"


def store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the configured store (no other source is read)."""
    ledger = settings.ledger
    common = {"ORIGINATOR_ID_TYPE": "text"}
    if ledger.store == "sqlite":
        path = ledger.path or settings.data_dir / "ledger.db"
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot create the ledger's directory {Path(path).parent}: {exc.strerror}. "
                "Set KLIPPFISK_LEDGER__PATH to a writable file."
            ) from exc
        return {
            **common,
            "PERSISTENCE_MODULE": SQLITE_FACTORY,
            "SQLITE_DBNAME": str(path),
            "SQLITE_SYNCHRONOUS": ledger.sqlite_synchronous,
            "SQLITE_LOCK_TIMEOUT": str(ledger.lock_timeout_seconds),
        }
    if ledger.store == "postgres":
        pg = ledger.postgres
        return {
            **common,
            "PERSISTENCE_MODULE": POSTGRES_FACTORY,
            "POSTGRES_DBNAME": pg.dbname,
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password.get_secret_value(),
            "POSTGRES_CONNECT_TIMEOUT": str(pg.connect_timeout),
            "POSTGRES_SCHEMA": pg.db_schema,
            "POSTGRES_LOCK_TIMEOUT": str(ledger.lock_timeout_seconds),
        }
    raise StoreUnavailable(
        f"Unknown ledger store {ledger.store!r}. Set KLIPPFISK_LEDGER__STORE to sqlite or postgres."
    )
