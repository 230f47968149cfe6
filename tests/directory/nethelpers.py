"""Real-socket helpers: servers behind delaying relays on loopback, registered by name."""

from __future__ import annotations

from contextlib import AsyncExitStack

import minimalt
from minimalt.testing.link import LinkConfig, UDPLink


async def answer(conn: minimalt.Connection) -> None:
    """Echo one request and end: what each timed request asks of a server."""
    while data := await conn.read(1 << 16):
        conn.write(data)
        await conn.drain()


async def delayed(stack: AsyncExitStack, one_way: float) -> UDPLink:
    """A relay adding ``one_way`` seconds each way; its target is set once the server behind
    it is bound (the server's record must name the relay, so the relay comes first)."""
    link = UDPLink(("127.0.0.1", 9), LinkConfig(delay=one_way))
    return await stack.enter_async_context(link)


async def directory_behind(
    stack: AsyncExitStack, one_way: float, **options
) -> minimalt.DirectoryServer:
    link = await delayed(stack, one_way)
    options.setdefault("store", ":memory:")
    directory = await stack.enter_async_context(
        minimalt.serve_directory(advertise=link.address, **options)
    )
    link.target = directory.address
    return directory


async def server_behind(
    stack: AsyncExitStack, one_way: float, name: str, directory: minimalt.DirectoryConfig, **kw
) -> minimalt.Server:
    link = await delayed(stack, one_way)
    server = await stack.enter_async_context(
        minimalt.serve(
            answer,
            service="echo",
            identity=minimalt.Identity.generate(name),
            advertise=link.address,
            directory=directory,
            **kw,
        )
    )
    link.target = server.address
    return server
