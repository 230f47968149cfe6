"""Where a directory keeps its names: a small interface, an in-memory store and SQLite.

Each name is bound to one long-term identity (the first to register it, or the one an operator
configured) and holds that identity's newest signed record. The rules that protect a name are
enforced *inside* ``put``, atomically, so several directory replicas sharing one store cannot
race each other into breaking them:

* a record for a name bound to another identity is refused (``FORBIDDEN``);
* a record expiring before the one held is refused (``STALE``): an older record never
  overwrites a newer one, whatever order registrations (or replays of them) arrive in.

Records are stored as their signed bytes; the store never needs to parse them.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class PutResult(enum.Enum):
    """What ``Store.put`` did."""

    STORED = "stored"  # the name now holds this record
    UNCHANGED = "unchanged"  # it already held exactly this record
    FORBIDDEN = "forbidden"  # the name is bound to another identity
    STALE = "stale"  # the name holds a record that expires later


@dataclass(frozen=True)
class Entry:
    """One name: the identity it is bound to and its newest record (None: bound, no record)."""

    name: str
    identity: bytes
    record: bytes | None
    expires: int


@runtime_checkable
class Store(Protocol):
    """The directory's storage. Names are given normalised (see ``protocol.normalize_name``)."""

    def get(self, name: str) -> Entry | None:
        """The entry for ``name``, or None if the name is unknown."""

    def put(self, name: str, record: bytes, identity: bytes, expires: int) -> PutResult:
        """Store ``record`` for ``name`` if ``identity`` may (see the module docstring);
        binds an unknown name to ``identity``. Atomic."""

    def bind(self, name: str, identity: bytes) -> None:
        """Operator: bind ``name`` to ``identity`` (dropping any record of another identity)."""

    def unbind(self, name: str) -> None:
        """Operator: forget ``name`` entirely (anyone may register it again)."""

    def names(self) -> list[str]:
        """Every known name, sorted."""

    def close(self) -> None:
        """Release the store's resources."""


def _decide(current: Entry | None, record: bytes, identity: bytes, expires: int) -> PutResult:
    if current is None:
        return PutResult.STORED
    if current.identity != identity:
        return PutResult.FORBIDDEN
    if current.record == record:
        return PutResult.UNCHANGED
    if current.record is not None and expires < current.expires:
        return PutResult.STALE
    # Equal expiry with other bytes (a restart within the same second) is accepted: only the
    # identity itself can register (the directory requires createAuth), so this is no replay.
    return PutResult.STORED


class MemoryStore:
    """A store in a dict: for tests and throw-away directories."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def put(self, name: str, record: bytes, identity: bytes, expires: int) -> PutResult:
        result = _decide(self._entries.get(name), record, identity, expires)
        if result is PutResult.STORED:
            self._entries[name] = Entry(name, identity, record, expires)
        return result

    def bind(self, name: str, identity: bytes) -> None:
        current = self._entries.get(name)
        if current is None or current.identity != identity:
            self._entries[name] = Entry(name, identity, None, 0)

    def unbind(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS names (
    name     TEXT PRIMARY KEY,
    identity BLOB NOT NULL,
    record   BLOB,
    expires  INTEGER NOT NULL DEFAULT 0,
    updated  REAL NOT NULL
)
"""


class SQLiteStore:
    """A store in an SQLite file (WAL mode, so several processes may share it; ``put`` runs in
    an immediate transaction, so its check and its write are one step for all of them).

    Calls block for a primary-key lookup (tens of microseconds); the directory makes them on
    its event loop."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Autocommit mode: transactions are begun explicitly where they matter.
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def get(self, name: str) -> Entry | None:
        row = self._db.execute(
            "SELECT identity, record, expires FROM names WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return Entry(name, bytes(row[0]), None if row[1] is None else bytes(row[1]), row[2])

    def put(self, name: str, record: bytes, identity: bytes, expires: int) -> PutResult:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = _decide(self.get(name), record, identity, expires)
            if result is PutResult.STORED:
                db.execute(
                    "INSERT INTO names (name, identity, record, expires, updated) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                    "identity = excluded.identity, record = excluded.record, "
                    "expires = excluded.expires, updated = excluded.updated",
                    (name, identity, record, expires, time.time()),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def bind(self, name: str, identity: bytes) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            current = self.get(name)
            if current is None or current.identity != identity:
                db.execute(
                    "INSERT OR REPLACE INTO names (name, identity, record, expires, updated) "
                    "VALUES (?, ?, NULL, 0, ?)",
                    (name, identity, time.time()),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def unbind(self, name: str) -> None:
        self._db.execute("DELETE FROM names WHERE name = ?", (name,))

    def names(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM names ORDER BY name")]

    def close(self) -> None:
        self._db.close()


def default_store_path() -> Path:
    """``$XDG_CONFIG_HOME/minimalt/directory.sqlite3`` (``~/.config/...`` by default)."""
    from .config import config_dir

    return config_dir() / "directory.sqlite3"


def open_store(spec: Store | str | os.PathLike[str] | None) -> tuple[Store, bool]:
    """A store from an object, a path (``":memory:"`` for a throw-away one) or None (the default
    file). Returns ``(store, owned)``: ``owned`` when this call opened it (the caller closes it)."""
    if spec is None:
        return SQLiteStore(default_store_path()), True
    if isinstance(spec, (str, os.PathLike)):
        return (MemoryStore() if str(spec) == ":memory:" else SQLiteStore(spec)), True
    if not isinstance(spec, Store):
        raise TypeError(f"expected a Store, a path or None, not {type(spec).__name__}")
    return spec, False
