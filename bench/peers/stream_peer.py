"""TLS 1.3 over TCP, or plain TCP, with asyncio streams: the benchmark's kernel-TCP peers.

The same workloads as every peer (see ``common.py``): one server serves both (first byte 0:
bulk sink, else echo). TLS: TLS 1.3 only, a self-signed ECDSA P-256 certificate made at run
time, verified by the client; every rr iteration is a full handshake (no session resumption).

    python bench/peers/stream_peer.py server [--tls CERT KEY]
    python bench/peers/stream_peer.py client --port N [--tls CERT KEY] --test bulk --bytes N
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from typing import Any

import common

_COUNT = common.COUNT


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readexactly(_COUNT.size)
        if head[0] == 0:  # bulk: a length, then that many bytes
            (expected,) = _COUNT.unpack(head)
            total = 0
            read = reader.read
            while total < expected:
                block = await read(1 << 20)
                if not block:
                    break
                total += len(block)
            writer.write(_COUNT.pack(total))
        else:  # echo one request
            writer.write(head + await reader.readexactly(common.REQUEST_SIZE - len(head)))
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


def server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert, key)
    # Fresh handshakes only: no tickets, so nothing could resume.
    context.num_tickets = 0
    return context


def client_context(cert: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cert)
    return context


async def serve(args: argparse.Namespace) -> None:
    context = server_context(*args.tls) if args.tls else None
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=4096)
    control = common.Control()
    control.start({"port": server.sockets[0].getsockname()[1]})
    await control.done
    server.close()


async def bulk(args: argparse.Namespace) -> dict[str, Any]:
    context = client_context(args.tls[0]) if args.tls else None
    meter = common.Meter()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", args.port, ssl=context, server_hostname="localhost" if context else None
    )
    written = await common.upload(writer.write, writer.drain, reader.readexactly, args.bytes)
    figures = meter.read()
    writer.close()
    return {"bytes": written, **figures}


async def rr(args: argparse.Namespace) -> dict[str, Any]:
    context = client_context(args.tls[0]) if args.tls else None
    hostname = "localhost" if context else None
    request = common.REQUEST

    async def once() -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", args.port, ssl=context, server_hostname=hostname
        )
        try:
            writer.write(request)
            if await reader.readexactly(len(request)) != request:
                raise SystemExit("echo mismatch")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass

    return await common.run_rr(once, args.count, args.concurrency)


def main() -> None:
    parser = common.peer_parser(__doc__, loop="uvloop", count=1000)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    common.run_peer(args, serve, bulk=bulk, rr=rr)


if __name__ == "__main__":
    main()
