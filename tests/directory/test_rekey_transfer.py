"""Rekey over real sockets: a 50 MB upload with the client moving the tunnel on its own and on
the server's request; every byte arrives in order, the TID changes, old keys are gone."""

from __future__ import annotations

import hashlib

import pytest

import minimalt
from minimalt.proto.tunnel import Tunnel
from minimalt.testing.sim import keys_held

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(120)]

SIZE = 50 << 20
CHUNK = 1 << 20


async def test_rekeys_during_a_50_mb_transfer_keep_every_byte_and_drop_old_keys():
    payload = hashlib.shake_256(b"minimalt rekey").digest(SIZE)
    server_side: dict[str, object] = {}

    async def sink(conn: minimalt.Connection) -> None:
        digest = hashlib.sha256()
        received = 0
        asked = False
        while data := await conn.read(CHUNK):
            digest.update(data)
            received += len(data)
            if received >= SIZE // 2 and not asked:
                conn.rekey()  # the server asks the client to move (rekeyNow)
                asked = True
        server_side["tunnel"] = conn.tunnel
        conn.write(digest.digest())

    async with minimalt.serve(sink, service="sink") as server:
        async with minimalt.Client() as client:
            conn = await client.connect(server.record, "sink")
            tunnel = conn.tunnel
            tids = [tunnel.tid]
            key_sets = [keys_held(tunnel)]
            for offset in range(0, SIZE, CHUNK):
                conn.write(payload[offset : offset + CHUNK])
                await conn.drain()
                if offset % (10 * CHUNK) == 5 * CHUNK:
                    conn.rekey()  # the client moves on its own (nextTid)
                if tunnel.tid != tids[-1]:
                    tids.append(tunnel.tid)
                keys = keys_held(tunnel)
                if keys != key_sets[-1]:
                    key_sets.append(keys)
            conn.write_eof()
            assert await conn.readexactly(32) == hashlib.sha256(payload).digest()
            await conn.wait_closed()
            stunnel = server_side["tunnel"]
            assert isinstance(stunnel, Tunnel)
            assert stunnel.tid == tunnel.tid and stunnel.epoch == tunnel.epoch
            assert tunnel.epoch >= 5 and len(set(tids)) >= 5
            current = keys_held(tunnel) | keys_held(stunnel)
            retired = set().union(*key_sets) - current
            assert len(retired) >= 2 * 4  # two directions for each finished epoch
            assert not (current & retired)  # neither end holds an old key
            assert tids[0] not in (t.tid for t in client.tunnels)
