"""createAuth: a client opens a connection as a user; the authenticator is bound to the tunnel
and the server, so forged or replayed ones are refused."""

from __future__ import annotations

from minimalt.proto import constants as C
from minimalt.proto import events as E
from minimalt.proto.crypto import SeededRandom, SigningKeyPair

from .test_tunnel import make_pair

ALICE = SigningKeyPair.generate(SeededRandom(b"alice"))
MALLORY = SigningKeyPair.generate(SeededRandom(b"mallory"))


def _open_as(tunnel, user):
    cid = tunnel.open_connection("echo", retry_safe=True, user=user)
    tunnel.send(cid, b"who am i?")
    return cid


def test_the_handler_sees_the_users_key():
    sim, server, client, record, server_app, client_app = make_pair()
    tunnel = client.connect(record, sim.now)
    cid = _open_as(tunnel, ALICE)
    anonymous = tunnel.open_connection("echo", retry_safe=True)
    tunnel.send(anonymous, b"anyone")
    assert sim.run(lambda: cid in client_app.data and anonymous in client_app.data, timeout=5)
    opened = {event.cid: event.user for event in server_app.of(E.ConnectionOpened)}
    assert opened == {cid: ALICE.public, anonymous: None}


def test_a_forged_authenticator_is_refused():
    sim, server, client, record, server_app, client_app = make_pair()
    tunnel = client.connect(record, sim.now)
    cid = _open_as(tunnel, MALLORY)
    tunnel.connections[cid].user = ALICE.public  # claims to be Alice, signed by Mallory
    assert sim.run(lambda: client_app.of(E.ConnectionRefused), timeout=5)
    (refused,) = client_app.of(E.ConnectionRefused)
    assert refused.code == C.ERR_AUTH_FAILED
    assert server_app.of(E.ConnectionOpened) == []
    assert tunnel.state == "open"


def test_an_authenticator_replayed_on_another_tunnel_is_refused():
    sim, server, client, record, server_app, client_app = make_pair()
    first = client.connect(record, sim.now)
    cid = _open_as(first, ALICE)
    assert sim.run(lambda: cid in client_app.data, timeout=5)
    stolen = (first.connections[cid].user, first.connections[cid].auth_signature)
    first.close()
    assert sim.run(lambda: not client.tunnels, timeout=5)
    second = client.connect(record, sim.now)
    assert second is not first
    cid2 = second.open_connection("echo", retry_safe=True)
    conn = second.connections[cid2]
    conn.user, conn.auth_signature = stolen  # same cid, same service, another tunnel
    second.send(cid2, b"as alice again")
    assert sim.run(lambda: client_app.of(E.ConnectionRefused), timeout=5)
    assert client_app.of(E.ConnectionRefused)[0].code == C.ERR_AUTH_FAILED
    assert [event.user for event in server_app.of(E.ConnectionOpened)] == [ALICE.public]
