"""The link emulator (minimalt.testing.link): the model's decisions, then the relay on loopback."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from minimalt.testing.link import (
    Blackhole,
    GilbertElliott,
    LinkConfig,
    LinkModel,
    UDPLink,
    main,
    precise_loop,
)
from tests.aio.leaks import no_leaked_resources  # noqa: F401  (autouse fixture)

# --- the model, on made-up times ----------------------------------------------------------------


def run_model(config: LinkConfig, count: int = 10_000, seed: int = 1, spacing: float = 0.001):
    model = LinkModel(config, seed)
    out = []
    for i in range(count):
        out.append(model.offer(i.to_bytes(4, "big") + bytes(96), i * spacing))
    return model, out


def test_same_seed_same_fate_for_every_datagram():
    config = LinkConfig(
        delay=0.01, jitter=0.002, loss=0.05, burst=3, duplicate=0.02, corrupt=0.02, reorder=0.02
    )
    _, first = run_model(config, seed=7)
    _, again = run_model(config, seed=7)
    _, other = run_model(config, seed=8)
    assert first == again
    assert first != other


def test_decisions_do_not_depend_on_arrival_times():
    """Loss, corruption and duplication follow the datagram's index, not the clock."""
    config = LinkConfig(loss=0.1, duplicate=0.05, corrupt=0.05)
    _, slow = run_model(config, 2000, spacing=0.01)
    _, fast = run_model(config, 2000, spacing=0.0001)
    assert [[d for _, d in copies] for copies in slow] == [[d for _, d in c] for c in fast]


def test_random_loss_rate_is_close_to_the_setting():
    model, _ = run_model(LinkConfig(loss=0.02))
    assert 150 <= model.stats.lost <= 250  # 2 % of 10,000, within sampling noise


def test_bursty_loss_keeps_the_long_run_rate_and_bursts_up_to_the_limit():
    model, out = run_model(LinkConfig(loss=0.02, burst=3), 50_000)
    assert 0.015 <= model.stats.lost / 50_000 <= 0.025
    runs, current = [], 0
    for copies in out:
        if copies:
            if current:
                runs.append(current)
            current = 0
        else:
            current += 1
    assert max(runs) <= 3 * 2  # two bursts can touch; a single one never exceeds 3
    assert {1, 2, 3} <= set(runs)


def test_gilbert_elliott_loss_comes_in_long_bursts():
    model, out = run_model(LinkConfig(gilbert=GilbertElliott(p=0.01, r=0.25)), 50_000)
    rate = model.stats.lost / 50_000
    assert 0.02 <= rate <= 0.06  # p/(p+r) = 3.8 %
    longest = current = 0
    for copies in out:
        current = 0 if copies else current + 1
        longest = max(longest, current)
    assert longest >= 8  # mean burst 4: 50,000 datagrams show long ones


def test_delay_and_jitter_keep_order():
    _, out = run_model(LinkConfig(delay=0.05, jitter=0.02), 2000)
    times = [copies[0][0] for copies in out]
    assert times == sorted(times)
    assert all(t - i * 0.001 >= 0.05 for i, t in enumerate(times))
    assert max(t - i * 0.001 for i, t in enumerate(times)) > 0.06


def test_reordering_lets_later_datagrams_overtake():
    model, out = run_model(LinkConfig(delay=0.01, reorder=0.05, reorder_gap=0.005), 2000)
    order = sorted(range(len(out)), key=lambda i: (out[i][0][0], i))
    assert order != list(range(len(out)))
    assert 50 <= model.stats.reordered <= 150


def test_duplicates_and_corruption():
    model, out = run_model(LinkConfig(duplicate=0.03, corrupt=0.03), 5000)
    assert model.stats.duplicated == sum(len(c) == 2 for c in out)
    flipped = 0
    for i, copies in enumerate(out):
        original = i.to_bytes(4, "big") + bytes(96)
        for _, data in copies:
            if data != original:
                flipped += 1
                assert len(data) == len(original)
                diff = [a ^ b for a, b in zip(data, original, strict=True) if a != b]
                assert len(diff) == 1 and bin(diff[0]).count("1") == 1  # exactly one bit
    assert flipped >= model.stats.corrupted > 100


def test_bandwidth_limit_spaces_datagrams_and_drops_past_the_queue():
    # 1 Mbit/s: a 100-byte datagram (+28 overhead) takes 1.024 ms; offered every 0.5 ms.
    config = LinkConfig(rate=1e6, queue=5000, overhead=28)
    model, out = run_model(config, 1000, spacing=0.0005)
    delivered = [copies[0][0] for copies in out if copies]
    gaps = [b - a for a, b in zip(delivered, delivered[1:], strict=False)]
    assert min(gaps) >= 0.001024 - 1e-9
    assert model.stats.queue_dropped > 400  # half the offered load cannot fit
    assert model.stats.delivered + model.stats.queue_dropped == 1000


def test_blackhole_schedule():
    hole = Blackhole(period=5.0, duration=2.0)
    assert not hole.dead(0.0) and not hole.dead(2.99)
    assert hole.dead(3.0) and hole.dead(4.99)
    assert not hole.dead(5.0) and hole.dead(8.5) and not hole.dead(10.1)
    model = LinkModel(LinkConfig(blackholes=(hole,)), origin=100.0)
    assert model.offer(b"x" * 32, 101.0) and not model.offer(b"x" * 32, 104.0)
    assert model.stats.blackholed == 1


def test_datagrams_over_the_path_size_are_dropped_and_the_rest_keep_their_fate():
    limited = LinkModel(LinkConfig(loss=0.1, max_datagram=1472), seed=5)
    unlimited = LinkModel(LinkConfig(loss=0.1), seed=5)
    for i in range(2000):
        size = 1473 if i % 3 == 0 else 1472
        data = i.to_bytes(4, "big") + bytes(size - 4)
        fate = limited.offer(data, i * 0.001)
        expected = unlimited.offer(data, i * 0.001)
        if size > 1472:
            assert fate == []
        else:
            assert fate == expected  # the same random draws per datagram, too big or not
    assert limited.stats.too_big == 667
    with pytest.raises(ValueError, match="max_datagram"):
        LinkConfig(max_datagram=0)


def test_config_round_trips_through_json_form():
    config = LinkConfig(
        delay=0.015,
        loss=0.02,
        burst=3,
        rate=10e6,
        gilbert=GilbertElliott(0.01, 0.3),
        blackholes=(Blackhole(5, 2),),
        max_datagram=1472,
    )
    assert LinkConfig.from_dict(config.to_dict()) == config
    assert "max_datagram=1472B" in config.describe()
    assert "delay=15ms" in config.describe() and "blackhole=2s/5s" in config.describe()


# --- the relay, on real sockets ------------------------------------------------------------------


class Echo(asyncio.DatagramProtocol):
    """A UDP echo server that remembers every source address it saw."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, int]] = []

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
        if addr not in self.sources:
            self.sources.append(addr)
        self.transport.sendto(data, addr)


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiters: dict[bytes, asyncio.Future[float]] = {}

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
        waiter = self.waiters.pop(data, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(time.monotonic())

    async def ping(self, payload: bytes, timeout: float = 2.0) -> float:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[payload] = waiter
        sent = time.monotonic()
        self.transport.sendto(payload)
        return await asyncio.wait_for(waiter, timeout) - sent


async def with_relay(body, **link_kwargs):  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    server_transport, echo = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    try:
        async with UDPLink(server_transport.get_extra_info("sockname"), **link_kwargs) as link:
            client_transport, client = await loop.create_datagram_endpoint(
                Client, remote_addr=link.address
            )
            try:
                return await body(link, echo, client)
            finally:
                client_transport.close()
    finally:
        server_transport.close()


@pytest.mark.network
def test_relay_delays_each_direction_on_a_precise_loop():
    async def body(link, echo, client):  # type: ignore[no-untyped-def]
        return [await client.ping(b"%d" % i) for i in range(5)]

    with asyncio.Runner(loop_factory=precise_loop) as runner:
        rtts = runner.run(with_relay(body, c2s=LinkConfig(delay=0.02), s2c=LinkConfig(delay=0.005)))
    assert all(rtt >= 0.025 for rtt in rtts)
    assert sorted(rtts)[2] < 0.035  # median: scheduling adds well under 10 ms


@pytest.mark.network
def test_relay_rebinds_port_then_address_and_drops_answers_to_the_old_socket():
    async def body(link, echo, client):  # type: ignore[no-untyped-def]
        await client.ping(b"a")
        first = echo.sources[-1]
        link.rebind("port")
        await client.ping(b"b")
        second = echo.sources[-1]
        link.rebind("address")
        await client.ping(b"c")
        third = echo.sources[-1]
        return first, second, third, [p.kind for p in link.paths]

    with asyncio.Runner(loop_factory=precise_loop) as runner:
        first, second, third, kinds = runner.run(with_relay(body))
    assert first[0] == second[0] == "127.0.0.1" and first[1] != second[1]
    assert third[0] == "127.0.0.2"
    assert kinds == ["start", "port", "address"]


@pytest.mark.network
def test_relay_drops_everything_in_a_blackhole():
    async def body(link, echo, client):  # type: ignore[no-untyped-def]
        await client.ping(b"before")
        link.reconfigure(LinkConfig(blackholes=(Blackhole(period=60, duration=60, offset=0),)))
        with pytest.raises(TimeoutError):
            await client.ping(b"during", timeout=0.2)
        link.reconfigure(LinkConfig())
        await client.ping(b"after")
        return link.stats()

    with asyncio.Runner(loop_factory=precise_loop) as runner:
        stats = runner.run(with_relay(body))
    assert stats["c2s"]["blackholed"] == 1


def test_cli_help_lists_the_link_options():
    done = subprocess.run(
        [sys.executable, "-m", "minimalt.testing.link", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    for option in (
        "--delay",
        "--loss",
        "--burst",
        "--gilbert",
        "--reorder",
        "--duplicate",
        "--corrupt",
        "--rate",
        "--queue",
        "--blackhole",
        "--rebind",
        "--seed",
    ):
        assert option in done.stdout


@pytest.mark.network
def test_cli_relays_for_a_bounded_duration():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert (
            main(
                [
                    "--target",
                    f"127.0.0.1:{port}",
                    "--delay",
                    "1ms",
                    "--loss",
                    "1%",
                    "--duration",
                    "0.05",
                ]
            )
            == 0
        )
