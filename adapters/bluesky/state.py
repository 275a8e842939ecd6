"""The bot's durable memory: notification cursor, pending mentions, session, login times,
and failed attempts at answering.

One SQLite file, created with 0600 permissions because it holds the session's tokens. A
mention is written here (`remember`) before the cursor moves past it, and marked done only
after its final reply is posted, so a mention made while the bot was down, or one the bot
was working on when it was killed, is picked up on the next start and nothing is skipped.
Doing it twice is harmless: the ledger's submit is idempotent on the post URI and replies
have deterministic record keys (see `bot.py`).

Failed attempts are kept here too, with the time of the next try, so a reply the server keeps
refusing is tried again later and later (exponential backoff) rather than on every poll, and
a restart neither forgets the count nor retries at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BotState", "PendingMention"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mentions (
    uri TEXT PRIMARY KEY,
    cid TEXT NOT NULL,
    author TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    record TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS logins (at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    uri TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    retry_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class PendingMention:
    """A mention the bot has taken in but not finished answering."""

    uri: str
    cid: str
    author: str
    indexed_at: str
    record: dict[str, Any]


class BotState:
    """Durable bot state in one 0600 SQLite file; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def cursor(self) -> str | None:
        """indexedAt of the newest mention taken in; older ones were all handled or remembered."""
        return self._get("cursor")

    @property
    def session(self) -> str | None:
        return self._get("session")

    def save_session(self, session_string: str) -> None:
        self._put("session", session_string)

    def remember(self, mentions: list[PendingMention], cursor: str | None) -> None:
        """Store new mentions and move the cursor, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO mentions (uri, cid, author, indexed_at, record) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (m.uri, m.cid, m.author, m.indexed_at, json.dumps(m.record))
                        for m in mentions
                    ],
                )
                if cursor is not None:
                    self._db.execute(
                        "INSERT INTO kv (key, value) VALUES ('cursor', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (cursor,),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending(self, now: float | None = None) -> list[PendingMention]:
        """Mentions not yet finished, oldest first; with `now`, only those not waiting for
        their next try after a failure."""
        with self._lock:
            rows = self._db.execute(
                "SELECT m.uri, m.cid, m.author, m.indexed_at, m.record FROM mentions m "
                "LEFT JOIN failures f ON f.uri = m.uri "
                "WHERE m.done = 0 AND (? IS NULL OR f.retry_at IS NULL OR f.retry_at <= ?) "
                "ORDER BY m.indexed_at, m.uri",
                (now, now),
            ).fetchall()
        return [PendingMention(u, c, a, i, json.loads(r)) for u, c, a, i, r in rows]

    def record_failure(self, uri: str, now: float, first_pause: float, max_pause: float) -> int:
        """Count one more failed attempt at `uri` and hold it back for `first_pause` seconds,
        doubled with each further failure up to `max_pause`; return the attempts so far."""
        with self._lock:
            row = self._db.execute("SELECT attempts FROM failures WHERE uri = ?", (uri,)).fetchone()
            attempts = (row[0] if row else 0) + 1
            pause = min(first_pause * 2 ** (attempts - 1), max_pause)
            self._db.execute(
                "INSERT INTO failures (uri, attempts, retry_at) VALUES (?, ?, ?) "
                "ON CONFLICT (uri) DO UPDATE SET attempts = excluded.attempts, "
                "retry_at = excluded.retry_at",
                (uri, attempts, now + pause),
            )
        return attempts

    def failures(self, uri: str) -> tuple[int, float] | None:
        """(attempts, time of the next try) after failures at `uri`, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT attempts, retry_at FROM failures WHERE uri = ?", (uri,)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def status(self, uri: str) -> str | None:
        """ "pending", "done", or None for a mention never taken in."""
        with self._lock:
            row = self._db.execute("SELECT done FROM mentions WHERE uri = ?", (uri,)).fetchone()
        return None if row is None else ("done" if row[0] else "pending")

    def finish(self, uri: str) -> None:
        with self._lock:
            self._db.execute("UPDATE mentions SET done = 1 WHERE uri = ?", (uri,))
            self._db.execute("DELETE FROM failures WHERE uri = ?", (uri,))

    def record_login(self, at: float | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT INTO logins (at) VALUES (?)", (at or time.time(),))

    def logins_since(self, since: float) -> int:
        """Password logins made since `since`, across restarts (to never log in in a loop)."""
        with self._lock:
            return self._db.execute(
                "SELECT count(*) FROM logins WHERE at >= ?", (since,)
            ).fetchone()[0]
