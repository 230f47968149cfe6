"""Property-based fuzzing of the tunnel state machine: random interleavings of API calls,
packets, timers, drops, duplicates, corruption and garbage. Whatever happens, no exception
escapes the endpoints, and every connection delivers a prefix of exactly what was sent."""

from __future__ import annotations

import os
import random as _random

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from minimalt.proto import events as E
from minimalt.proto.config import EndpointConfig
from minimalt.proto.errors import LocalProtocolError
from minimalt.testing.sim import Link, Simulation

SERVER = ("10.0.0.1", 4000)
CLIENT = ("10.0.0.2", 5000)


class TunnelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Simulation(seed=1)
        keys = self.sim.server_keys()
        self.sent: dict[int, bytearray] = {}  # cid -> bytes the client wrote
        self.echoed: dict[int, bytearray] = {}  # cid -> bytes the server received
        self.back: dict[int, bytearray] = {}  # cid -> bytes the client got back
        self.ended: set[int] = set()  # no more writes (ended or reset)
        self.finished: set[int] = set()  # ended cleanly: everything must come back
        self.captured: list[bytes] = []
        self.client_done: set[int] = set()
        self.server = self.sim.add_endpoint(
            SERVER,
            server_keys=keys,
            config=EndpointConfig(services={"echo"}, idle_timeout=600.0, puzzle_threshold=None),
            handler=self._server_event,
        )
        self.client = self.sim.add_endpoint(
            CLIENT,
            config=EndpointConfig(rekey_packets=200, idle_timeout=600.0),
            handler=self._client_event,
        )
        self.link = Link(delay=0.01)
        self.sim.set_link(CLIENT, SERVER, self.link)
        self.link.drop = self._capture
        self.back_link = self.sim.links[(SERVER, CLIENT)]
        self.record = keys.record(*SERVER)
        self.tunnel = self.client.connect(self.record, self.sim.now)
        self.rng = _random.Random(0)

    # --- the applications --------------------------------------------------------------

    def _capture(self, datagram: bytes) -> bool:
        self.captured.append(datagram)
        del self.captured[:-50]
        return False

    def _server_event(self, sim, endpoint, event) -> None:
        if isinstance(event, E.DataReceived):
            self.echoed.setdefault(event.cid, bytearray()).extend(event.data)
            event.tunnel.consume(event.cid, len(event.data))
            if event.cid in event.tunnel.connections and event.tunnel.state == "open":
                try:
                    event.tunnel.send(event.cid, event.data, end_stream=event.end_stream)
                except LocalProtocolError:
                    pass  # the connection was reset meanwhile

    def _client_event(self, sim, endpoint, event) -> None:
        if isinstance(event, E.DataReceived):
            self.back.setdefault(event.cid, bytearray()).extend(event.data)
            event.tunnel.consume(event.cid, len(event.data))
            if event.end_stream:
                self.client_done.add(event.cid)

    # --- rules -------------------------------------------------------------------------

    @precondition(lambda self: self.tunnel.state == "open")
    @rule(retry_safe=st.booleans())
    def open_connection(self, retry_safe: bool) -> None:
        cid = self.tunnel.open_connection("echo", retry_safe=retry_safe)
        self.sent[cid] = bytearray()

    @precondition(lambda self: self.tunnel.state == "open" and self.sent)
    @rule(
        data=st.binary(min_size=1, max_size=5000),
        pick=st.integers(0, 1000),
        end=st.booleans(),
        safe=st.none() | st.booleans(),
    )
    def write(self, data: bytes, pick: int, end: bool, safe: bool | None) -> None:
        cid = sorted(self.sent)[pick % len(self.sent)]
        if cid in self.ended or cid not in self.tunnel.connections:
            return
        self.tunnel.send(cid, data, end_stream=end, retry_safe=safe)
        self.sent[cid].extend(data)
        if end:
            self.ended.add(cid)
            self.finished.add(cid)
        self.sim.run(timeout=0.05)

    @precondition(lambda self: self.tunnel.state == "open" and self.sent)
    @rule(size=st.integers(1000, 300_000), pick=st.integers(0, 1000))
    def bulk(self, size: int, pick: int) -> None:
        data = bytes((i * 7 + size) & 0xFF for i in range(256)) * (size // 256 + 1)
        self.write(data[:size], pick, False, None)

    @precondition(lambda self: self.tunnel.state == "open" and self.sent)
    @rule(pick=st.integers(0, 1000))
    def reset(self, pick: int) -> None:
        cid = sorted(self.sent)[pick % len(self.sent)]
        if cid in self.tunnel.connections:
            self.tunnel.reset_connection(cid)
            self.ended.add(cid)
            self.finished.discard(cid)

    @rule(seconds=st.floats(0.0, 2.0))
    def run(self, seconds: float) -> None:
        self.sim.run(timeout=seconds)

    @rule(
        loss=st.floats(0.0, 0.5),
        corrupt=st.floats(0.0, 0.2),
        dup=st.floats(0.0, 0.2),
        jitter=st.floats(0.0, 0.03),
    )
    def weather(self, loss: float, corrupt: float, dup: float, jitter: float) -> None:
        for link in (self.link, self.back_link):
            link.loss, link.corrupt, link.duplicate, link.jitter = loss, corrupt, dup, jitter

    @rule(mtu=st.sampled_from([None, 1228, 1280, 1500, 9000]))
    def path_mtu(self, mtu: int | None) -> None:
        # The path's MTU changes (both ways): probing must follow it down (black hole) and up.
        self.sim.set_mtu(CLIENT, SERVER, mtu)

    @rule(data=st.binary(max_size=1400), to_server=st.booleans())
    def garbage(self, data: bytes, to_server: bool) -> None:
        target = self.server if to_server else self.client
        target.receive_datagram(data, ("10.9.9.9", 9), self.sim.now)

    @precondition(lambda self: self.captured)
    @rule(
        pick=st.integers(0, 100),
        pos=st.integers(0, 1500),
        mask=st.integers(1, 255),
        truncate=st.booleans(),
        elsewhere=st.booleans(),
    )
    def tamper(self, pick: int, pos: int, mask: int, truncate: bool, elsewhere: bool) -> None:
        packet = bytearray(self.captured[pick % len(self.captured)])
        if truncate:
            del packet[pos % (len(packet) + 1) :]
        elif packet:
            packet[pos % len(packet)] ^= mask
        source = ("10.9.9.9", 9) if elsewhere else CLIENT
        self.server.receive_datagram(bytes(packet), source, self.sim.now)

    @precondition(lambda self: self.captured)
    @rule(pick=st.integers(0, 100))
    def replay(self, pick: int) -> None:
        self.server.receive_datagram(self.captured[pick % len(self.captured)], CLIENT, self.sim.now)

    @precondition(lambda self: self.tunnel.state == "open")
    @rule()
    def rekey(self) -> None:
        self.tunnel.rekey()

    @precondition(lambda self: self.server.tunnels)
    @rule()
    def server_asks_rekey(self) -> None:
        tunnel = next(iter(self.server.tunnels.values()))
        if tunnel.state == "open":
            tunnel.request_rekey()

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def delivered_bytes_are_a_prefix_of_what_was_sent(self) -> None:
        for cid, got in self.echoed.items():
            assert self.sent.get(cid, b"").startswith(got), f"server got wrong bytes on {cid}"
        for cid, got in self.back.items():
            assert self.sent.get(cid, b"").startswith(got), f"client got wrong bytes on {cid}"

    @invariant()
    def accounting_stays_sane(self) -> None:
        for endpoint in (self.server, self.client):
            for tunnel in endpoint.tunnels.values():
                assert tunnel.recovery.bytes_in_flight >= 0
                assert len(tunnel._recv_pns) <= 64 + 1
        assert len(self.server.tunnels) <= 2  # the real one, and at most one replayed twin

    def teardown(self) -> None:
        # Clear weather and time: every cleanly ended connection gets all its bytes back.
        for link in (self.link, self.back_link):
            link.loss = link.corrupt = link.duplicate = link.jitter = 0.0
        if self.tunnel.state == "open":
            self.sim.run(lambda: all(cid in self.client_done for cid in self.finished), timeout=120)
            for cid in self.finished:
                assert bytes(self.back.get(cid, b"")) == bytes(self.sent[cid]), f"lost on {cid}"


# CI runs a bounded budget; MINIMALT_FUZZ_EXAMPLES=5000 (say) runs a long campaign.
TunnelMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("MINIMALT_FUZZ_EXAMPLES", "40")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_tunnel_state_machine = TunnelMachine.TestCase


def test_fuzz_target_survives_random_inputs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "fuzz" / "receive_datagram.py"
    spec = importlib.util.spec_from_file_location("fuzz_receive_datagram", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = _random.Random(1)
    for _ in range(2000):
        module.one_input(rng.randbytes(rng.choice([0, 1, 16, 31, 32, 60, 200, 1200, 1500])))
    _, server, client, genuine = module._STATE
    assert genuine and len(server.tunnels) == 1  # the live tunnel survived it all
