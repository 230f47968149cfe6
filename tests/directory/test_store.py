"""Stores: the ownership and freshness rules hold inside ``put`` for every store, SQLite keeps
them across restarts and between replicas sharing one file."""

from __future__ import annotations

import pytest

from minimalt.directory.store import (
    Entry,
    MemoryStore,
    PutResult,
    SQLiteStore,
    Store,
    default_store_path,
    open_store,
)

A, B = b"A" * 32, b"B" * 32


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "d.sqlite3")
    yield made
    made.close()


def test_every_store_meets_the_interface(store):
    assert isinstance(store, Store)


def test_first_identity_owns_a_name_and_newer_records_replace_older(store):
    assert store.get("alpha") is None
    assert store.put("alpha", b"r1", A, 100) is PutResult.STORED
    assert store.put("alpha", b"r1", A, 100) is PutResult.UNCHANGED
    assert store.put("alpha", b"x", B, 999) is PutResult.FORBIDDEN
    assert store.put("alpha", b"r0", A, 99) is PutResult.STALE
    assert store.put("alpha", b"r2", A, 200) is PutResult.STORED
    assert store.get("alpha") == Entry("alpha", A, b"r2", 200)
    assert store.names() == ["alpha"]


def test_operator_bindings_override_and_unbind_frees_a_name(store):
    store.put("alpha", b"r1", A, 100)
    store.bind("alpha", B)  # the operator gives the name to B: A's record goes
    assert store.get("alpha") == Entry("alpha", B, None, 0)
    assert store.put("alpha", b"r", A, 500) is PutResult.FORBIDDEN
    assert store.put("alpha", b"b1", B, 50) is PutResult.STORED
    store.bind("alpha", B)  # binding again to the same identity keeps its record
    assert store.get("alpha").record == b"b1"
    store.unbind("alpha")
    assert store.get("alpha") is None
    assert store.put("alpha", b"r", A, 1) is PutResult.STORED


def test_sqlite_keeps_names_across_restarts_and_between_replicas(tmp_path):
    path = tmp_path / "shared.sqlite3"
    one, two = SQLiteStore(path), SQLiteStore(path)  # two directory replicas, one file
    try:
        assert one.put("alpha", b"r1", A, 100) is PutResult.STORED
        assert two.put("alpha", b"x", B, 900) is PutResult.FORBIDDEN
        assert two.put("alpha", b"r2", A, 200) is PutResult.STORED
        assert one.put("alpha", b"r1", A, 100) is PutResult.STALE
        assert one.get("alpha").record == b"r2"
    finally:
        one.close()
        two.close()
    again = SQLiteStore(path)
    try:
        assert again.get("alpha") == Entry("alpha", A, b"r2", 200)
    finally:
        again.close()


def test_open_store_takes_objects_paths_and_the_default(tmp_path, monkeypatch):
    mine = MemoryStore()
    assert open_store(mine) == (mine, False)
    store, owned = open_store(":memory:")
    assert isinstance(store, MemoryStore) and owned
    store, owned = open_store(tmp_path / "x.sqlite3")
    assert isinstance(store, SQLiteStore) and owned
    store.close()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_store_path() == tmp_path / "cfg" / "minimalt" / "directory.sqlite3"
    store, owned = open_store(None)
    store.close()
    assert default_store_path().exists()
    with pytest.raises(TypeError):
        open_store(42)  # type: ignore[arg-type]
