"""Identities, records and key rotation as the runtime uses them."""

from __future__ import annotations

import asyncio
import stat

import pytest

import minimalt

from .conftest import echo

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


async def test_identity_file_round_trip_is_private_and_not_overwritten(tmp_path):
    path = tmp_path / "id.json"
    identity = minimalt.Identity.generate("files")
    identity.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = minimalt.Identity.load(path)
    assert loaded.public == identity.public and loaded.name == "files"
    with pytest.raises(FileExistsError):
        minimalt.Identity.generate().save(path)
    path.write_text(path.read_text().replace('"seed": "', '"seed": "AAAA'))
    with pytest.raises(minimalt.IdentityError, match="malformed|does not match"):
        minimalt.Identity.load(path)
    with pytest.raises(minimalt.IdentityError, match="not found"):
        minimalt.Identity.load(tmp_path / "missing.json")


async def test_a_server_keeps_its_identity_across_restarts_with_fresh_ephemeral_keys(tmp_path):
    path = tmp_path / "id.json"
    minimalt.Identity.generate("steady").save(path)
    records = []
    for _ in range(2):
        async with minimalt.serve(echo, service="echo", identity=str(path)) as server:
            records.append(server.record)
    assert records[0].identity == records[1].identity
    assert records[0].ephemeral != records[1].ephemeral  # never stored: forward secrecy
    assert records[0].name == "steady"


async def test_rotation_serves_old_records_and_publishes_the_new_one():
    published = []
    async with minimalt.serve(echo, service="echo", on_record=published.append) as server:
        old = server.record
        async with minimalt.Client() as client:
            conn = await client.connect(old, "echo")
            conn.write(b"1")
            assert await conn.readexactly(1) == b"1"
            new = server.rotate_keys()
            assert published == [new] and server.record == new
            assert new.ephemeral != old.ephemeral and new.identity == old.identity
            # The open tunnel is unaffected; a fresh client with the old record is still served.
            conn.write(b"2")
            assert await conn.readexactly(1) == b"2"
            conn.close()
            await conn.wait_closed()
        async with minimalt.Client() as late:
            conn = await late.connect(old, "echo", retry_safe=True)
            conn.write(b"3")
            assert await asyncio.wait_for(conn.readexactly(1), 10) == b"3"
            conn.close()
            await conn.wait_closed()
        # Once the old key has expired and been erased (forced here), the server answers a
        # first packet boxed to it with its current record, and the client redoes its first
        # flight to that, without an error.
        server.rotate_keys()
        server._keys.remove_ephemeral(old.key_id)
        async with minimalt.Client() as later:
            conn = await later.connect(old, "echo", retry_safe=True)
            conn.write(b"4")
            assert await asyncio.wait_for(conn.readexactly(1), 10) == b"4"
            assert server.stats()["drops"].get("unknown_server_key") == 1
            conn.close()
            await conn.wait_closed()


async def test_record_forms_all_load(echo_server, tmp_path):
    record = echo_server.record
    file = tmp_path / "record.txt"
    file.write_text(record.to_text() + "\n")
    for form in (record, record.to_text(), record.to_bytes(), str(file), file):
        assert minimalt.load_record(form) == record
    with pytest.raises(TypeError):
        minimalt.load_record(12345)  # type: ignore[arg-type]


async def test_each_test_runs_on_the_loop_its_id_names(request):
    from .conftest import on_uvloop

    assert ("[uvloop]" in request.node.name) == on_uvloop()
    assert ("[asyncio]" in request.node.name) == (not on_uvloop())
