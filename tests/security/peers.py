"""The other processes of the attack tests, so they compete with the server as outsiders do.

    python peers.py flood HOST PORT KEY_ID_HEX [--rate N] [--max-packets M] [--max-seconds T]
    python peers.py clients RECORD_TEXT [--requests K]

``flood`` sends fake first packets (the KEY flag, a fresh canonical client key, the server's
real key id, 1200 bytes, a random box): each costs a server that does its Curve25519 work before
asking for a puzzle one X25519. It prints ``flooding`` after its first batch, floods until stdin
closes or a limit is reached, then prints ``sent N``.

``clients`` runs K requests one after another, each on a fresh client (a new tunnel, so a new
first packet and, under load, a puzzle to solve), and prints one JSON line: how many completed
byte for byte and how long each took.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

FLAG_KEY = 1 << 63
TID_MASK = (1 << 62) - 1
PACKET_SIZE = 1200
BATCH_INTERVAL = 0.005


def fake_first_packet(key_id: bytes) -> bytes:
    tid = int.from_bytes(os.urandom(8), "big") & TID_MASK
    nonce = int.from_bytes(os.urandom(8), "big") | 1  # odd: from a client
    public = bytearray(os.urandom(32))
    public[31] &= 0x3F  # below 2^255 - 19: passes the canonical-key check
    header = struct.pack(">QQ", tid | FLAG_KEY, nonce) + bytes(public) + key_id
    return header + os.urandom(PACKET_SIZE - len(header))


def flood(args: argparse.Namespace) -> None:
    key_id = bytes.fromhex(args.key_id)
    per_batch = max(1, int(args.rate * BATCH_INTERVAL))
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        started = time.monotonic()
        next_batch = started
        announced = False
        while sent < args.max_packets and time.monotonic() - started < args.max_seconds:
            for _ in range(min(per_batch, args.max_packets - sent)):
                try:
                    sock.sendto(fake_first_packet(key_id), (args.host, args.port))
                    sent += 1
                except BlockingIOError:
                    break
            if not announced:
                print("flooding", flush=True)
                announced = True
            next_batch += BATCH_INTERVAL
            # Wait for the next batch, or for stdin to close (the test is done with us).
            ready, _, _ = select.select(
                [sys.stdin], [], [], max(0.0, next_batch - time.monotonic())
            )
            if ready and not sys.stdin.buffer.read1(1):
                break
    print(f"sent {sent}", flush=True)


def clients(args: argparse.Namespace) -> None:
    import minimalt

    async def main() -> dict:
        record = minimalt.load_record(args.record)
        times = []
        completed = 0
        for i in range(args.requests):
            request = f"request {i} under the flood".encode()
            begin = time.monotonic()
            async with minimalt.Client(connect_timeout=10.0) as client:
                conn = await client.connect(record, "echo", retry_safe=True)
                conn.write(request)
                conn.write_eof()
                answer = await conn.read()
                await conn.wait_closed()
            times.append(time.monotonic() - begin)
            completed += answer == request
        return {"completed": completed, "times": times}

    print(json.dumps(minimalt.run(main())), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("flood")
    f.add_argument("host")
    f.add_argument("port", type=int)
    f.add_argument("key_id")
    f.add_argument("--rate", type=int, default=8000, help="packets per second")
    f.add_argument("--max-packets", type=int, default=100_000)
    f.add_argument("--max-seconds", type=float, default=30.0)
    c = sub.add_parser("clients")
    c.add_argument("record")
    c.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    flood(args) if args.mode == "flood" else clients(args)


if __name__ == "__main__":
    main()
