"""Key rotation under load, real sockets: clients resolve a server by name and connect over and
over (each on a fresh socket, so each opens a new tunnel with whatever record it has cached)
while the server rotates its keys every second and re-registers after each rotation."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest

import minimalt
from minimalt.aio.directory import DirectoryClient

from .nethelpers import answer

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

INTERVAL, GRACE = 1.0, 0.5
ROTATIONS = 3
WORKERS = 4


async def test_clients_connecting_continuously_across_three_rotations_see_no_failure():
    async with AsyncExitStack() as stack:
        directory = await stack.enter_async_context(minimalt.serve_directory(store=":memory:"))
        config = directory.client_config
        records: list[minimalt.ServerRecord] = []
        rotated = asyncio.Event()

        def on_record(record: minimalt.ServerRecord) -> None:
            records.append(record)
            if len(records) >= ROTATIONS:
                rotated.set()

        server = await stack.enter_async_context(
            minimalt.serve(
                answer,
                service="echo",
                identity=minimalt.Identity.generate("busy"),
                directory=config,
                rotation_interval=INTERVAL,
                rotation_grace=GRACE,
                on_record=on_record,
            )
        )
        first = server.record
        # One resolver (and record cache) shared by every client, as in one application.
        resolver = await stack.enter_async_context(DirectoryClient.from_config(config))
        done_after_last_rotation = 0
        results: list[tuple[float, bytes]] = []
        failures: list[BaseException] = []
        handed_over = 0  # connections made with a rotated-out record, answered in-band

        async def worker(index: int) -> None:
            nonlocal done_after_last_rotation, handed_over
            n = 0
            while done_after_last_rotation < 40:
                payload = b"%d:%d" % (index, n)
                n += 1
                try:
                    async with minimalt.Client(directory=resolver, connect_timeout=5) as client:
                        conn = await client.connect("busy", "echo", retry_safe=True)
                        conn.write(payload)
                        assert await asyncio.wait_for(conn.readexactly(len(payload)), 5) == payload
                        conn.close()
                        await conn.wait_closed()
                        handed_over += client.learned_record(first.identity) is not None
                except Exception as exc:  # every failure is counted, none is expected
                    failures.append(exc)
                    return
                results.append((time.monotonic(), payload))
                if rotated.is_set():
                    done_after_last_rotation += 1

        await asyncio.gather(*(worker(i) for i in range(WORKERS)))
        assert failures == []
        assert len(records) >= ROTATIONS
        assert len(results) >= 100
        assert handed_over > 0  # the rotations happened under the clients' feet
        assert len({r.ephemeral for r in [first, *records]}) == len(records) + 1
        # Re-registered after every rotation: the directory hands out the newest record.
        assert directory.stats()["directory"]["register_stored"] >= ROTATIONS + 1
        assert (await resolver.lookup("busy", use_cache=False)).ephemeral in {
            r.ephemeral for r in records[-2:]
        }
        # Expired private keys are erased when they expire (give the timer a tick).
        held = server._keys._ephemeral.values()
        assert all(key.expires > time.time() - 0.2 for key in held)
        assert len(held) <= 4  # previous ones inside their grace, current, next
