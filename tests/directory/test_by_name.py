"""By name over real sockets: a directory and two servers, each behind a relay adding a fixed
delay, and clients resolving names. Round trips are measured as elapsed time over the RTT."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest

import minimalt
from minimalt.aio.directory import DirectoryClient
from minimalt.directory.store import Entry, MemoryStore

from .nethelpers import answer, directory_behind, server_behind

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

ONE_WAY = 0.04
RTT = 2 * ONE_WAY


async def timed_request(client: minimalt.Client, name: str) -> float:
    """Round trips from ``connect(name)`` to the echoed request."""
    start = time.monotonic()
    conn = await client.connect(name, "echo", retry_safe=True)
    conn.write(name.encode())
    assert await conn.readexactly(len(name)) == name.encode()
    elapsed = time.monotonic() - start
    conn.close()
    return elapsed / RTT


def assert_round_trips(measured: float, expected: int) -> None:
    # At least the propagation delay; less than half a round trip of processing on top.
    assert expected - 0.05 <= measured < expected + 0.5, (measured, expected)


async def test_a_new_name_costs_two_round_trips_and_a_cached_one_one_through_a_relay():
    async with AsyncExitStack() as stack:
        directory = await directory_behind(stack, ONE_WAY)
        config = directory.client_config  # names the relay, as a client is configured
        for name in ("alpha", "beta"):
            await server_behind(stack, ONE_WAY, name, config)
        assert directory.stats()["directory"] == {"register_stored": 2}

        client = await stack.enter_async_context(minimalt.Client(directory=config))
        assert_round_trips(await timed_request(client, "alpha"), 3)  # + first contact
        assert client.directory.record == directory.record
        assert_round_trips(await timed_request(client, "beta"), 2)
        assert_round_trips(await timed_request(client, "alpha"), 1)
        assert_round_trips(await timed_request(client, "beta"), 1)

        # A client that kept the directory's record (a later run): fresh tunnels everywhere,
        # 0-RTT to the directory and to the server.
        known = DirectoryClient(config.address, config.identity, record=directory.record)
        stack.push_async_callback(known.aclose)
        fresh = await stack.enter_async_context(minimalt.Client(directory=known))
        assert_round_trips(await timed_request(fresh, "beta"), 2)
        assert_round_trips(await timed_request(fresh, "beta"), 1)
        assert known.counters == {"lookups": 1, "cache_hits": 1}


async def test_module_level_connect_resolves_names_through_the_environment(monkeypatch):
    async with AsyncExitStack() as stack:
        directory = await directory_behind(stack, 0.0)
        await server_behind(stack, 0.0, "gamma", directory.client_config)
        for key, value in directory.client_config.to_env().items():
            monkeypatch.setenv(key, value)
        async with minimalt.connect("Gamma", "echo", retry_safe=True) as conn:
            conn.write(b"by name")
            assert await conn.readexactly(7) == b"by name"
        with pytest.raises(minimalt.NameNotFound, match="no server named 'delta'"):
            await minimalt.connect("delta", "echo")


async def test_without_a_directory_a_name_is_a_clear_configuration_error(monkeypatch, tmp_path):
    for variable in ("MINIMALT_DIRECTORY", "MINIMALT_DIRECTORY_KEY", "MINIMALT_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    async with minimalt.Client() as client:
        with pytest.raises(minimalt.DirectoryConfigError, match="no directory configured"):
            await client.connect("somewhere", "echo")
        with pytest.raises(minimalt.RecordError, match="neither a record"):
            await client.connect("not a name", "echo")


async def test_a_registration_by_another_key_is_refused_and_the_owner_keeps_the_name():
    async with AsyncExitStack() as stack:
        directory = await directory_behind(stack, 0.0)
        config = directory.client_config
        owner = await server_behind(stack, 0.0, "alpha", config)
        with pytest.raises(minimalt.RegistrationRefused, match="another identity") as refused:
            await server_behind(stack, 0.0, "alpha", config)  # same name, another key
        assert refused.value.code == "forbidden"
        async with DirectoryClient.from_config(config) as asker:
            assert (await asker.lookup("alpha")).identity == owner.identity.public
            # Someone else's record, registered by a connection not opened as its identity:
            intruder = minimalt.Identity.generate("alpha")
            with pytest.raises(minimalt.RegistrationRefused, match="another identity"):
                await asker.register(owner.record, intruder)
        assert directory.stats()["directory"]["error_forbidden"] == 1


async def test_a_forged_or_expired_record_from_the_directory_is_never_used():
    store = MemoryStore()
    async with AsyncExitStack() as stack:
        directory = await directory_behind(stack, 0.0, store=store)
        config = directory.client_config
        server = await server_behind(stack, 0.0, "alpha", config)
        good = store.get("alpha")
        forged = bytearray(good.record)
        forged[-1] ^= 1  # the store (or a replica) was tampered with
        store._entries["alpha"] = Entry("alpha", good.identity, bytes(forged), good.expires)
        client = await stack.enter_async_context(minimalt.Client(directory=config))
        with pytest.raises(minimalt.RecordError, match="signature"):
            await client.connect("alpha", "echo")
        assert len(client.directory.cache) == 0
        assert [t.peer for t in client.tunnels] == [config.address]  # only the directory's
        # An expired record: the directory does not serve it, the client never uses it.
        store._entries["alpha"] = Entry("alpha", good.identity, good.record, int(time.time()))
        with pytest.raises(minimalt.NameNotFound, match="expired"):
            await client.connect("alpha", "echo")
        assert len(client.directory.cache) == 0 and server.is_serving()


async def test_a_wrong_directory_key_fails_quickly_with_a_hint():
    async with minimalt.serve_directory(store=":memory:") as directory:
        wrong = minimalt.Identity.generate().public
        async with DirectoryClient(directory.address, wrong, timeout=0.5) as asker:
            with pytest.raises(minimalt.DirectoryUnavailable, match="MINIMALT_DIRECTORY_KEY"):
                await asker.lookup("alpha")


async def test_a_server_that_is_not_a_directory_is_reported_as_such():
    async with minimalt.serve(answer, service="echo") as server:
        record = server.record
        asker = DirectoryClient(server.address, record.identity, record=record, timeout=5)
        async with asker:
            with pytest.raises(minimalt.DirectoryUnavailable, match="not a directory"):
                await asker.lookup("alpha")


async def test_lookups_from_many_clients_at_once_are_all_answered():
    async with AsyncExitStack() as stack:
        directory = await directory_behind(stack, 0.0)
        config = directory.client_config
        await server_behind(stack, 0.0, "alpha", config)
        askers = [DirectoryClient.from_config(config) for _ in range(20)]
        for asker in askers:
            stack.push_async_callback(asker.aclose)
        records = await asyncio.gather(*(asker.lookup("alpha") for asker in askers))
        assert len({r.to_bytes() for r in records}) == 1
