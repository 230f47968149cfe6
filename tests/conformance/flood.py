"""A bounded flood of fake first packets at a minimalt server (the puzzle case's attacker).

    python tests/conformance/flood.py HOST PORT KEY_ID_HEX [--rate N] [--max-seconds T]
        [--max-packets M]

Each packet looks like a client's first packet (KEY flag, a fresh canonical-looking client key,
the server's key id, 1200 bytes) but its box is random, so only a server that does its
Curve25519 work before asking for a puzzle would spend much on it. Prints ``flooding`` once the
first batch is out, then floods until stdin closes or a limit is reached, and prints
``sent N``. Runs in its own process so the flood competes with the server as an outside
attacker would, not inside its event loop.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import struct
import sys
import time

FLAG_KEY = 1 << 63
TID_MASK = (1 << 62) - 1
PACKET_SIZE = 1200
BATCH_INTERVAL = 0.01


def fake_first_packet(key_id: bytes) -> bytes:
    tid = int.from_bytes(os.urandom(8), "big") & TID_MASK
    nonce = int.from_bytes(os.urandom(8), "big") | 1  # odd: from a client
    public = bytearray(os.urandom(32))
    public[31] &= 0x3F  # well below 2^255 - 19: passes the canonical-key check
    header = struct.pack(">QQ", tid | FLAG_KEY, nonce) + bytes(public) + key_id
    return header + os.urandom(PACKET_SIZE - len(header))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("key_id")
    parser.add_argument("--rate", type=int, default=5000, help="packets per second")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--max-packets", type=int, default=1_000_000)
    args = parser.parse_args()
    key_id = bytes.fromhex(args.key_id)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    per_batch = max(1, int(args.rate * BATCH_INTERVAL))
    sent = 0
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        started = time.monotonic()
        announced = False
        next_batch = started
        while sent < args.max_packets and time.monotonic() - started < args.max_seconds:
            for _ in range(per_batch):
                try:
                    sock.sendto(fake_first_packet(key_id), (args.host, args.port))
                    sent += 1
                except (BlockingIOError, InterruptedError):
                    break
            try:
                while sock.recv(2048):  # the server's puzzles: read and forget
                    pass
            except (BlockingIOError, InterruptedError, ConnectionRefusedError):
                pass
            if not announced:
                print("flooding", flush=True)
                announced = True
            next_batch += BATCH_INTERVAL
            wait = max(0.0, next_batch - time.monotonic())
            readable, _, _ = select.select([sys.stdin], [], [], wait)
            if readable and not sys.stdin.read(1):
                break  # the parent closed our stdin: stop
    print(f"sent {sent}", flush=True)


if __name__ == "__main__":
    main()
