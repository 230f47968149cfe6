"""createAuth through the asyncio API: connections opened as a user; the handler sees the
user's key; forged and replayed authenticators fail the connection with a clear error."""

from __future__ import annotations

import pytest

import minimalt
from minimalt.proto import constants as C

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]

ALICE = minimalt.Identity.generate("alice")
MALLORY = minimalt.Identity.generate("mallory")


@pytest.fixture
async def whoami():
    seen: list[bytes | None] = []

    async def handler(conn: minimalt.Connection) -> None:
        await conn.read()
        seen.append(conn.user)
        conn.write(conn.user or b"anonymous")

    async with minimalt.serve(handler, service="whoami") as server:
        server.seen = seen  # type: ignore[attr-defined]
        yield server


async def ask(conn: minimalt.Connection) -> bytes:
    conn.write(b"who am i?")
    conn.write_eof()
    return await conn.read()


async def test_the_handler_sees_the_users_key_and_none_for_anonymous(whoami):
    async with minimalt.Client() as client:
        as_alice = await client.connect(whoami.record, "whoami", retry_safe=True, user=ALICE)
        anonymous = await client.connect(whoami.record, "whoami", retry_safe=True)
        assert await ask(as_alice) == ALICE.public
        assert await ask(anonymous) == b"anonymous"
        assert as_alice.user == ALICE.public and anonymous.user is None
        assert as_alice.tunnel is anonymous.tunnel  # users are per connection, not per tunnel
        as_signing_key = await client.connect(whoami.record, "whoami", user=ALICE.signing)
        assert await ask(as_signing_key) == ALICE.public
    assert sorted(whoami.seen, key=repr) == sorted([ALICE.public, None, ALICE.public], key=repr)


async def test_a_forged_authenticator_is_refused_with_a_clear_error(whoami):
    async with minimalt.Client() as client:
        conn = await client.connect(whoami.record, "whoami", user=MALLORY)
        # Claim to be Alice with Mallory's signature (before the Create goes out).
        conn.tunnel.connections[conn.cid].user = ALICE.public
        with pytest.raises(minimalt.ConnectionRefused, match="authenticator") as refused:
            await ask(conn)
        assert refused.value.code == C.ERR_AUTH_FAILED
        # The tunnel is fine: an honest connection on it works.
        honest = await client.connect(whoami.record, "whoami", user=MALLORY)
        assert await ask(honest) == MALLORY.public
    assert whoami.seen == [MALLORY.public]


async def test_an_authenticator_replayed_on_another_tunnel_is_refused(whoami):
    async with minimalt.Client() as first, minimalt.Client() as second:
        conn = await first.connect(whoami.record, "whoami", retry_safe=True, user=ALICE)
        conn.write(b"who am i?")
        conn.write_eof()
        core = conn.tunnel.connections[conn.cid]
        assert await conn.read() == ALICE.public
        stolen = (core.user, core.auth_signature)  # seen on the wire, say
        assert stolen[1]
        replay = await second.connect(whoami.record, "whoami", retry_safe=True)
        assert replay.cid == conn.cid and replay.tunnel is not conn.tunnel
        target = replay.tunnel.connections[replay.cid]
        target.user, target.auth_signature = stolen
        with pytest.raises(minimalt.ConnectionRefused, match="authenticator") as refused:
            await ask(replay)
        assert refused.value.code == C.ERR_AUTH_FAILED
    assert whoami.seen == [ALICE.public]
