"""What every conformance case needs: a server with test services, a link between it and the
client, records naming the link, deterministic payloads, and observers of the core's events.

Services of the test server (all close after answering):

* ``download``: the client sends ``"<size> <seed>\\n"``; the server sends ``size`` bytes of
  ``payload(size, seed)``.
* ``hash``: the server reads to end of stream and answers the SHA-256 of what it read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import minimalt
from minimalt.proto.events import TunnelMigrated
from minimalt.testing.link import LinkConfig, UDPLink

MiB = 1 << 20
KiB = 1 << 10
_CHUNK = 64 * KiB


class CaseFailed(AssertionError):
    """The case ran and its pass criterion does not hold."""


class Unsupported(Exception):
    """The feature the case exercises does not exist (yet): reported, never passed."""


def check(condition: bool, detail: str) -> None:
    if not condition:
        raise CaseFailed(detail)


def payload(size: int, seed: int) -> bytes:
    """``size`` deterministic pseudo-random bytes (so a transfer can be checked byte for byte)."""
    return hashlib.shake_256(b"minimalt-conformance:%d" % seed).digest(size)


# --- the server ---------------------------------------------------------------------------------


async def download(conn: minimalt.Connection) -> None:
    line = await conn.readline()
    size_text, _, seed_text = line.decode().strip().partition(" ")
    size, seed = int(size_text), int(seed_text or 0)
    data = memoryview(payload(size, seed))
    for offset in range(0, size, _CHUNK):
        conn.write(data[offset : offset + _CHUNK])
        await conn.drain()
    conn.write_eof()


async def hash_service(conn: minimalt.Connection) -> None:
    digest = hashlib.sha256()
    while chunk := await conn.read(_CHUNK):
        digest.update(chunk)
    conn.write(digest.digest())
    conn.write_eof()


SERVICES = {"download": download, "hash": hash_service}


def serve(
    *,
    host: str = "127.0.0.1",
    config: minimalt.EndpointConfig | None = None,
    services: dict[str, Any] | None = None,
) -> Any:
    return minimalt.serve(services=services or dict(SERVICES), host=host, config=config)


def record_via(server: minimalt.Server, address: tuple[str, int]) -> minimalt.ServerRecord:
    """The server's record naming ``address`` (the link in front of it), signed by the server's
    identity: what a server behind a forwarder publishes."""
    unsigned = dataclasses.replace(server.record, host=address[0], port=address[1], signature=b"")
    return dataclasses.replace(
        unsigned, signature=server.identity.signing.sign(unsigned.signed_part())
    )


@asynccontextmanager
async def linked(
    server: minimalt.Server,
    c2s: LinkConfig,
    s2c: LinkConfig | None = None,
    **link_kwargs: Any,
) -> AsyncIterator[tuple[UDPLink, minimalt.ServerRecord]]:
    """A link emulator in front of ``server``, and the record clients use to reach it."""
    async with UDPLink(server.address, c2s, s2c, **link_kwargs) as link:
        yield link, record_via(server, link.address)


# --- the client ---------------------------------------------------------------------------------


async def fetch(
    client: minimalt.Client,
    record: minimalt.ServerRecord,
    size: int,
    seed: int = 0,
    *,
    timeout: float | None = None,
) -> bytes:
    """Download ``size`` bytes of ``payload(size, seed)`` on a new connection."""
    conn = await client.connect(record, "download", retry_safe=True, connect_timeout=timeout)
    conn.write(b"%d %d\n" % (size, seed))
    conn.write_eof()
    chunks = []
    while chunk := await conn.read(_CHUNK):
        chunks.append(chunk)
    await conn.wait_closed()
    return b"".join(chunks)


async def fetch_checked(
    client: minimalt.Client, record: minimalt.ServerRecord, size: int, seed: int = 0, **kw: Any
) -> None:
    data = await fetch(client, record, size, seed, **kw)
    check(len(data) == size, f"received {len(data)} bytes of {size}")
    check(data == payload(size, seed), f"the {size}-byte download differs from what was sent")


# --- observing the core -------------------------------------------------------------------------


def observe_events(
    server: minimalt.Server, kinds: tuple[type, ...] = (TunnelMigrated,)
) -> list[Any]:
    """Every path event of ``kinds`` the server reports (``Server.on_path_event``), in order."""
    seen: list[Any] = []
    previous = server.on_path_event

    def record(event: Any) -> None:
        if isinstance(event, kinds):
            seen.append(event)
        if previous is not None:
            previous(event)

    server.on_path_event = record
    return seen


def tid_of(datagram: bytes) -> int:
    """The 62-bit tunnel ID of a datagram (flags masked off)."""
    return int.from_bytes(datagram[:8], "big") & ((1 << 62) - 1)


def has_key_section(datagram: bytes) -> bool:
    """A client datagram carrying the client's ephemeral key: part of its first flight."""
    return bool(datagram[0] & 0x80)


class Counter:
    """A relay tap counting datagrams and bytes per direction, with timestamps."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float, int, bytes]] = []  # (direction, time, size, header)

    def __call__(self, direction: str, data: bytes, now: float, client: Any) -> None:
        self.log.append((direction, now, len(data), data[:16]))

    def sizes(self, direction: str) -> list[int]:
        return [size for d, _, size, _ in self.log if d == direction]

    def tids(self, direction: str = "c2s") -> set[int]:
        return {tid_of(header) for d, _, _, header in self.log if d == direction}


def fresh_client(**kwargs: Any) -> minimalt.Client:
    """A client with its own socket and no tunnels: every connection starts a new tunnel."""
    return minimalt.Client(**kwargs)


async def wait_for(awaitable: Any, seconds: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise CaseFailed(f"{what}: not done within {seconds:g} s") from None


def urandom(n: int) -> bytes:
    return os.urandom(n)
