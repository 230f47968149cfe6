"""Puzzles under a flood, on real sockets (DESIGN §8): a bounded load generator in another
process floods the server with fake first packets while legitimate clients in a third process,
each on a new tunnel, solve the puzzles they are given and complete their requests. The
server's CPU time per fake packet stays below the cost of one X25519; a reused or forged
solution is refused before any public-key work."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import time

import nacl.bindings
import pytest

import minimalt
from minimalt.proto import constants as C
from minimalt.proto import crypto
from minimalt.proto.packet import parse_header

from .netutil import Relay, Sink, child, closing, echo, echo_request, eventually

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(90)]

REQUESTS = 8
FLOOD_RATE = 8000  # fake first packets per second
FLOOD_MAX = 150_000  # bounded: at most this many, and at most FLOOD_SECONDS
FLOOD_SECONDS = 30.0
MEASURED = 20_000  # fake packets the server's CPU time is measured over (at least)


def x25519_cpu_seconds(rounds: int = 5, per_round: int = 400) -> float:
    """CPU seconds (this thread's) of one ``crypto_box_beforenm``: the median of ``rounds``."""
    secret = os.urandom(32)
    peers = [nacl.bindings.crypto_scalarmult_base(os.urandom(32)) for _ in range(per_round)]
    costs = []
    for _ in range(rounds):
        begin = time.thread_time()
        for peer in peers:
            nacl.bindings.crypto_box_beforenm(peer, secret)
        costs.append((time.thread_time() - begin) / per_round)
    return statistics.median(costs)


def fake_packets_seen(server: minimalt.Server) -> int:
    """First packets the server turned away: with a puzzle, or (below the threshold) after its
    X25519 when the box did not open."""
    drops = server.endpoint.drops
    return drops.get("puzzle_demanded", 0) + drops.get("auth", 0)


async def test_legitimate_clients_are_served_during_a_flood_at_low_cpu_per_fake_packet():
    config = minimalt.EndpointConfig(puzzle_threshold=1000.0, puzzle_difficulty=10)
    async with minimalt.serve(echo, service="echo", config=config) as server:
        x25519_before = x25519_cpu_seconds()
        host, port = server.address
        flood_args = ("flood", host, str(port), server.record.key_id.hex())
        limits = ("--rate", str(FLOOD_RATE), "--max-packets", str(FLOOD_MAX))
        async with child(*flood_args, *limits, "--max-seconds", str(FLOOD_SECONDS)) as flood:
            assert await asyncio.wait_for(flood.stdout.readline(), 10) == b"flooding\n"
            await eventually(
                lambda: server.endpoint.drops.get("puzzle_demanded", 0) > 0, 5, "puzzles"
            )
            cpu, fakes = time.thread_time(), fake_packets_seen(server)
            solved = server.endpoint.puzzles.stats.solved
            async with child("clients", server.record.to_text(), "--requests", str(REQUESTS)) as c:
                output, _ = await asyncio.wait_for(c.communicate(), 60)
            # A sample large enough to measure, whether or not the clients took that long.
            await eventually(
                lambda: fake_packets_seen(server) - fakes >= MEASURED, 20, f"{MEASURED} fakes"
            )
            cpu = time.thread_time() - cpu
            fakes = fake_packets_seen(server) - fakes
            solved = server.endpoint.puzzles.stats.solved - solved
            flood.stdin.close()  # stop the flood
            tail = await asyncio.wait_for(flood.stdout.read(), 10)
            assert tail.startswith(b"sent ") and int(tail.split()[1]) < FLOOD_MAX, tail
        x25519 = (x25519_before + x25519_cpu_seconds()) / 2
        tunnels_left = len(server.tunnels)

    result = json.loads(output)
    assert result["completed"] == REQUESTS, result  # every request completed, byte for byte
    assert solved >= REQUESTS  # each client's new tunnel met a puzzle and solved it
    assert fakes >= MEASURED
    per_fake = cpu / fakes
    print(
        f"\nflood: {fakes} fake first packets in {cpu:.3f} s of server CPU: "
        f"{per_fake * 1e6:.1f} us per packet; one X25519 {x25519 * 1e6:.1f} us; "
        f"{REQUESTS} requests {', '.join(f'{t * 1000:.0f}' for t in result['times'])} ms"
    )
    assert per_fake < x25519
    assert tunnels_left <= 1  # the flood held no state (at most a client closing)


async def test_reused_and_forged_puzzle_solutions_are_refused_before_any_curve25519(monkeypatch):
    config = minimalt.EndpointConfig(puzzle_threshold=0.0, puzzle_difficulty=12)
    relay = await Relay.start()
    server = await minimalt.serve(echo, service="echo", config=config, advertise=relay.address)
    relay.target = server.address
    attacker = await Sink.bind()
    async with closing(server, relay, attacker):
        async with minimalt.Client() as client:
            assert await echo_request(client, server.record, b"solved") == b"solved"
        assert server.endpoint.puzzles.stats.solved == 1
        answered = [data for data in relay.first_packets() if parse_header(data).puzzle is not None]
        genuine = answered[0]

        x25519_calls = []
        original = crypto.BoxKeyPair.shared_key

        def counting(self, peer_public):
            x25519_calls.append(peer_public)
            return original(self, peer_public)

        monkeypatch.setattr(crypto.BoxKeyPair, "shared_key", counting)
        header = parse_header(genuine)

        def new_tunnel_id(datagram: bytes) -> bytearray:
            """``datagram`` under a tunnel ID the server does not know (the genuine one may
            still be draining): it reaches the first-packet checks."""
            tid = (int.from_bytes(os.urandom(8), "big") & C.TID_MASK) | header.flags
            return bytearray(tid.to_bytes(8, "big") + datagram[8:])

        # Reused: the solved packet again (a solution does not bind the tunnel ID).
        reused = new_tunnel_id(genuine)
        # Forged: a challenge the server never issued; and a solution that does not solve.
        challenge_at = header.box_offset - C.PUZZLE_ANSWER_SIZE + C.PUZZLE_WINDOW_SIZE + 1
        forged = new_tunnel_id(genuine)
        forged[challenge_at] ^= 0x55
        unsolved = new_tunnel_id(genuine)
        challenge = genuine[challenge_at : challenge_at + C.PUZZLE_CHALLENGE_SIZE]
        solution_at = header.box_offset - C.PUZZLE_SOLUTION_SIZE
        difficulty = header.puzzle[C.PUZZLE_WINDOW_SIZE]
        for value in range(256):  # a last byte that leaves the work short of the difficulty
            unsolved[solution_at + 7] = value
            solution = bytes(unsolved[solution_at : solution_at + C.PUZZLE_SOLUTION_SIZE])
            work = hashlib.blake2b(challenge + solution, digest_size=8).digest()
            if int.from_bytes(work, "big") >> (64 - difficulty):
                break
        for datagram in (reused, forged, unsolved):
            attacker.send(bytes(datagram), server.address)
        drops = server.endpoint.drops
        expected = ("puzzle_reused", "puzzle_forged", "puzzle_unsolved")
        await eventually(lambda: all(drops.get(r) == 1 for r in expected), 5, f"{expected}")
        monkeypatch.undo()
        assert x25519_calls == []  # refused with symmetric work only
        assert server.endpoint.puzzles.stats.refused == 3
        assert attacker.received == []  # and never answered
