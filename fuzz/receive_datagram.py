"""Coverage-guided fuzz target: arbitrary datagrams into a server and an established client.

    pip install atheris
    python fuzz/receive_datagram.py -atheris_runs=1000000     # or any libFuzzer flags

The target builds two endpoints with a live tunnel between them, then feeds each input to both
endpoints (as a datagram from the peer's address and from a stranger's), and also spliced into
a genuine packet's header so the fuzzer reaches the decryption and frame parsing paths.
``receive_datagram`` must never raise, whatever the input. Without atheris, ``--smoke N`` runs
N random inputs (the test suite does this).
"""

from __future__ import annotations

import argparse
import os
import sys

from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.testing.sim import Link, Simulation

SERVER = ("10.0.0.1", 4000)
CLIENT = ("10.0.0.2", 5000)
STRANGER = ("10.9.9.9", 9)


def _setup():
    sim = Simulation(seed=1)
    keys = sim.server_keys()
    server = sim.add_endpoint(
        SERVER, server_keys=keys, config=EndpointConfig(services={"echo"}, puzzle_threshold=None)
    )
    client = sim.add_endpoint(CLIENT)
    sim.set_link(CLIENT, SERVER, Link(delay=0.01))
    genuine: list[bytes] = []
    sim.links[(CLIENT, SERVER)].drop = lambda d: genuine.append(d) or False
    tunnel = client.connect(keys.record(*SERVER), sim.now)
    cid = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(cid, b"hello")
    sim.run(lambda: any(isinstance(e, E.DataReceived) for e in list(server._events)) or
            bool(server.tunnels), timeout=5)
    sim.run(timeout=1)
    return sim, server, client, genuine


_STATE = None


def one_input(data: bytes) -> None:
    """Feed ``data`` to both endpoints in several ways; any exception is a finding."""
    global _STATE
    if _STATE is None:
        _STATE = _setup()
    sim, server, client, genuine = _STATE
    server.receive_datagram(data, CLIENT, sim.now)
    server.receive_datagram(data, STRANGER, sim.now)
    client.receive_datagram(data, SERVER, sim.now)
    if genuine and len(data) > 0:
        # Keep a real TID so the input reaches the tunnel's authentication and parsing.
        base = genuine[-1]
        spliced = base[:16] + data
        server.receive_datagram(spliced, CLIENT, sim.now)
    server.datagrams_to_send(sim.now)
    client.datagrams_to_send(sim.now)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", type=int, help="run this many random inputs, no atheris")
    args, rest = parser.parse_known_args(argv)
    if args.smoke:
        import random

        rng = random.Random(0)
        for _ in range(args.smoke):
            one_input(rng.randbytes(rng.choice([0, 1, 16, 31, 32, 60, 200, 1200, 1500])))
        print(f"{args.smoke} inputs, no exception")
        return
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris (or use --smoke N)")
    atheris.Setup([sys.argv[0], *rest], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
