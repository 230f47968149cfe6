"""aioquic benchmark peer (the Python QUIC implementation), at its best: the server handles
stream events on the protocol directly (no asyncio StreamReader in the receive path), on the
stdlib loop by default (aioquic reads ``loop.time()``, which uvloop ticks in whole
milliseconds: DESIGN §16).

Same workloads as every peer (see ``common.py``); one stream per workload, first byte 0 for the
bulk sink, else echo. TLS 1.3 inside QUIC with a self-signed ECDSA P-256 certificate verified by
the client; every rr iteration is a new QUIC connection from a new UDP socket (full handshake).

    python bench/peers/aioquic_peer.py server --tls CERT KEY
    python bench/peers/aioquic_peer.py client --port N --tls CERT KEY --test bulk --bytes N
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import common
from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived

_COUNT = common.COUNT
ALPN = ["minimalt-bench"]


class BenchServerProtocol(QuicConnectionProtocol):
    """Counts bulk streams, echoes requests: straight from ``StreamDataReceived`` events."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._streams: dict[int, list[Any]] = {}  # id -> [kind, expected, received, head]

    def quic_event_received(self, event: Any) -> None:
        if type(event) is not StreamDataReceived:
            return
        sid = event.stream_id
        state = self._streams.get(sid)
        data = event.data
        if state is None:
            state = self._streams[sid] = [None, 0, 0, b""]
        if state[0] is None:
            state[3] += data
            if len(state[3]) < _COUNT.size:
                return
            head, data = state[3], b""
            if head[0] == 0:
                state[0] = "sink"
                state[1] = _COUNT.unpack_from(head)[0]
                state[2] = len(head) - _COUNT.size
            else:
                state[0] = "echo"
                state[2] = len(head)
                state[3] = head
        if state[0] == "sink":
            state[2] += len(data)
            if state[2] >= state[1]:
                self._quic.send_stream_data(sid, _COUNT.pack(state[2]), end_stream=True)
                del self._streams[sid]
        else:
            if data:
                state[3] += data
            if len(state[3]) >= common.REQUEST_SIZE:
                self._quic.send_stream_data(sid, state[3], end_stream=True)
                del self._streams[sid]


async def run_server(args: argparse.Namespace) -> None:
    config = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    config.load_cert_chain(*args.tls)
    server = await serve("127.0.0.1", 0, configuration=config, create_protocol=BenchServerProtocol)
    control = common.Control()
    control.start({"port": server._transport.get_extra_info("sockname")[1]})
    await control.done
    server.close()


def client_config(args: argparse.Namespace) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=ALPN, server_name="localhost")
    config.load_verify_locations(args.tls[0])
    return config


async def bulk(args: argparse.Namespace) -> dict[str, Any]:
    config = client_config(args)
    meter = common.Meter()
    async with connect("127.0.0.1", args.port, configuration=config) as client:
        reader, writer = await client.create_stream()
        # aioquic's drain() never waits (its stream transport has no flow control to the
        # application): the writes queue in aioquic's send buffer, as its users' do.
        written = await common.upload(writer.write, writer.drain, reader.readexactly, args.bytes)
        figures = meter.read()
    return {"bytes": written, **figures}


async def rr(args: argparse.Namespace) -> dict[str, Any]:
    config = client_config(args)
    request = common.REQUEST

    draining: list[asyncio.Future[Any]] = []

    async def once() -> None:
        # connect()'s context manager waits out QUIC's draining period (3 PTOs, ~100 ms here)
        # on exit; a client has its answer by then, so the close is sent at once and the
        # wait left to a background task (awaited after the timed runs).
        opening = connect("127.0.0.1", args.port, configuration=config)
        client = await opening.__aenter__()
        try:
            reader, writer = await client.create_stream()
            writer.write(request)
            if await reader.readexactly(len(request)) != request:
                raise SystemExit("echo mismatch")
        finally:
            client.close()
            draining.append(asyncio.ensure_future(opening.__aexit__(None, None, None)))

    result = await common.run_rr(once, args.count, args.concurrency)
    await asyncio.gather(*draining)
    return result


def main() -> None:
    parser = common.peer_parser(__doc__, loop="asyncio", count=200)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), required=True)
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    common.run_peer(args, run_server, bulk=bulk, rr=rr)


if __name__ == "__main__":
    main()
