"""An echo server that publishes its record to a file, as a real deployment would.

    python examples/echo_server.py [--identity server.json] [--port 4433] [--record record.txt]

Clients need the record (address, identity key, current ephemeral key): pass the file to
``examples/client.py`` or ``minimalt connect``. Stop with Ctrl-C.
"""

import argparse
import asyncio
import os
import signal

import minimalt


async def echo(conn: minimalt.Connection) -> None:
    while data := await conn.read(65536):
        conn.write(data)
        await conn.drain()  # the client stopped reading? then we stop too


def publish(path: str, record: minimalt.ServerRecord) -> None:
    """Replace the record file atomically (it changes on every key rotation)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(record.to_text() + "\n")
    os.replace(tmp, path)


async def main(args: argparse.Namespace) -> None:
    identity = minimalt.Identity.load(args.identity) if args.identity else None
    server = await minimalt.serve(
        echo,
        service="echo",
        port=args.port,
        identity=identity,
        on_record=lambda record: publish(args.record, record),
    )
    publish(args.record, server.record)
    print(f"echo server on UDP {server.address[0]}:{server.address[1]}, record in {args.record}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    print("closed")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identity", help="identity file from `minimalt keygen`")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", default="record.txt", help="where to write the record")
    minimalt.run(main(parser.parse_args()))
