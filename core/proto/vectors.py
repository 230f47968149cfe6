"""Test vectors of docs/protocol.md, generated from the code with fixed keys.

``python -m minimalt.proto.vectors`` prints them as JSON (the content of ``docs/vectors.json``);
``--markdown`` prints the section of ``docs/protocol.md`` that shows them. The tests check that
the code still produces exactly the committed vectors.

The packet vectors come from the real code paths: a client ``Endpoint`` and a server ``Endpoint``
exchange datagrams by hand on a fixed virtual clock, each with a scripted random source that
hands out the fixed secrets below (the client's ephemeral key and TID, the server's diversifier)
and refuses any other draw. Every packet is then cross-checked against the primitives
(``build_header``, ``box_nonce``, the key derivation, ``encode_frame`` and ``DirectionKey.seal``):
the frames a vector lists are the whole payload, byte for byte.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from dataclasses import MISSING, fields
from typing import Any

from . import constants as C
from . import events as E
from .config import EndpointConfig
from .crypto import (
    BoxKeyPair,
    DirectionKey,
    RandomSource,
    SeededRandom,
    SigningKeyPair,
    auth_binding,
    box_nonce,
    client_to_server_key,
    evolve_key,
    key_id,
    next_tid,
    server_to_client_key,
)
from .endpoint import Endpoint
from .frames import (
    Ack,
    Blocked,
    Close,
    Create,
    Datagram,
    Frame,
    Hello,
    HelloAck,
    MaxConnData,
    MaxConns,
    MaxData,
    NewRecord,
    Padding,
    PathChallenge,
    PathResponse,
    Ping,
    Refuse,
    RekeyNow,
    Reset,
    Stream,
    auth_message,
    decode_frames,
    encode_frame,
)
from .packet import Header, build_header, parse_header
from .records import ServerKeys, ServerRecord

# --- fixed inputs ------------------------------------------------------------------------------

CLIENT_EPHEMERAL_SECRET = bytes(range(0x00, 0x20))
SERVER_EPHEMERAL_SECRET = bytes(range(0x20, 0x40))
SERVER_IDENTITY_SEED = bytes(range(0x40, 0x60))
TID = 0x0123456789ABCDEF
DIVERSIFIER = bytes(range(0x60, 0x70))
USER_SEED = bytes(range(0x80, 0xA0))  # a user's Ed25519 seed, for the createAuth vector
# The stale-key answer: a second client, holding a record of a server key the server has
# rotated away, opens a tunnel; the server answers with its current record.
STALE_CLIENT_SECRET = bytes(range(0xA0, 0xC0))
STALE_TID = 0x1122334455667788
OLD_EPHEMERAL_SECRET = bytes(range(0xC0, 0xE0))
STALE_CLIENT_ADDR = ("198.51.100.8", 50001)

UNIX_TIME = 1_700_000_000  # wall clock (Unix seconds) at the client's first packet
MONOTONIC_START = 1024.0  # the endpoints' monotonic clock at the same instant
RECORD_EXPIRES = UNIX_TIME + 3600
SERVER_NAME = "vectors.example"
SERVER_ADDR = ("192.0.2.1", 4433)
CLIENT_ADDR = ("198.51.100.7", 50000)
SERVICE = "echo"
REQUEST = b"GET /hello\n"
REQUEST_END = b"bye\n"
RESPONSE = b"hello, client\n"
ONE_WAY = 0.0625  # seconds from one endpoint to the other (exact in binary floating point)
APP_DELAY = 2.0**-10  # the client application writes this long after the server's answer

FRAME_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Padding,
        Ping,
        Ack,
        Hello,
        HelloAck,
        Create,
        Refuse,
        Reset,
        Stream,
        MaxData,
        MaxConnData,
        MaxConns,
        Close,
        Datagram,
        Blocked,
        PathChallenge,
        PathResponse,
        RekeyNow,
        NewRecord,
    )
}


class ScriptedRandom(RandomSource):
    """Hands out the scripted byte strings for draws of their size, in order; other draws
    (which do not reach the wire, e.g. a replay-cache hashing key) come from a seeded stream."""

    def __init__(self, *draws: bytes) -> None:
        self._draws: dict[int, deque[bytes]] = {}
        for value in draws:
            self._draws.setdefault(len(value), deque()).append(value)
        self._other = SeededRandom(b"minimalt test vectors")

    def __call__(self, n: int) -> bytes:
        queue = self._draws.get(n)
        return queue.popleft() if queue else self._other(n)

    @property
    def exhausted(self) -> bool:
        return not any(self._draws.values())


# --- JSON forms --------------------------------------------------------------------------------


def frame_to_json(frame: Frame) -> dict[str, Any]:
    """A frame as a JSON object: its class name, wire type byte and the fields that differ from
    their defaults (bytes as hex, ACK ranges as lists)."""
    out: dict[str, Any] = {"frame": type(frame).__name__, "type": encode_frame(frame)[0]}
    for f in fields(frame):  # type: ignore[arg-type]
        value = getattr(frame, f.name)
        if f.default is not MISSING and value == f.default:
            continue
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple):
            value = [list(item) for item in value]
        out[f.name] = value
    return out


def frame_from_json(obj: dict[str, Any]) -> Frame:
    """The frame a ``frame_to_json`` object describes."""
    cls = FRAME_CLASSES[obj["frame"]]
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in obj:
            continue  # a default value
        value = obj[f.name]
        if str(f.type) == "bytes" or f.type is bytes:
            value = bytes.fromhex(value)
        elif f.name == "ranges":
            value = tuple((first, last) for first, last in value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _hex_tid(tid: int) -> str:
    return f"0x{tid:016x}"


# --- generation --------------------------------------------------------------------------------


def _old_record() -> ServerRecord:
    """A record of the same server for an ephemeral key it no longer holds."""
    old = ServerKeys(SigningKeyPair(SERVER_IDENTITY_SEED), SERVER_NAME)
    old.add_ephemeral(BoxKeyPair(OLD_EPHEMERAL_SECRET), RECORD_EXPIRES)
    return old.record(*SERVER_ADDR)


def _keys() -> tuple[ServerKeys, ServerRecord]:
    keys = ServerKeys(SigningKeyPair(SERVER_IDENTITY_SEED), SERVER_NAME)
    # Made by this server and never shared: its replay cache vouches for every first packet
    # boxed to it, so the first flight's early data runs (docs/protocol.md §7).
    keys.add_ephemeral(
        BoxKeyPair(SERVER_EPHEMERAL_SECRET), RECORD_EXPIRES, created=UNIX_TIME, exclusive=True
    )
    return keys, keys.publish(*SERVER_ADDR)


def _config() -> EndpointConfig:
    # The initial limits, so that first packets carry no window frames and stay short to read.
    return EndpointConfig(
        services={SERVICE},
        connection_window=C.INITIAL_CONN_WINDOW,
        tunnel_window=C.INITIAL_TUNNEL_WINDOW,
        max_connections=C.INITIAL_MAX_CONNS,
    )


def _one(datagrams: list[tuple[bytes, Any]], peer: Any) -> bytes:
    if len(datagrams) != 1 or datagrams[0][1] != peer:
        raise AssertionError(f"expected one datagram to {peer}, got {len(datagrams)}")
    return datagrams[0][0]


def _events(endpoint: Endpoint) -> list[E.Event]:
    out = []
    while (event := endpoint.next_event()) is not None:
        out.append(event)
    return out


def _packet_vector(
    name: str,
    description: str,
    packet: bytes,
    key: bytes,
    direction: int,
    key_inputs: dict[str, str],
) -> dict[str, Any]:
    header = parse_header(packet)
    if not isinstance(header, Header):
        raise AssertionError(f"{name}: header does not parse: {header}")
    box = packet[header.box_offset :]
    payload = DirectionKey(key, direction).open(box, header.tid, header.nonce)
    if payload is None:
        raise AssertionError(f"{name}: box does not open")
    frames = decode_frames(payload)
    # The packet must be exactly what the primitives make of the listed inputs.
    clear = build_header(
        header.tid,
        header.nonce,
        client_public=header.client_public,
        key_id=header.key_id,
        diversifier=header.diversifier,
    )
    rebuilt = DirectionKey(key, direction).seal(
        clear, header.tid, header.nonce, b"".join(encode_frame(f) for f in frames)
    )
    if rebuilt != packet:
        raise AssertionError(f"{name}: the primitives do not rebuild the packet")
    section: dict[str, str] = {}
    if header.client_public is not None:
        section = {
            "client_public": header.client_public.hex(),
            "key_id": (header.key_id or b"").hex(),
        }
    elif header.diversifier is not None:
        section = {"diversifier": header.diversifier.hex()}
    return {
        "name": name,
        "description": description,
        "inputs": {
            "direction": "client_to_server"
            if direction == C.DIRECTION_CLIENT_TO_SERVER
            else "server_to_client",
            **key_inputs,
            "tid": _hex_tid(header.tid),
            "flags": [
                flag
                for flag, bit in (("KEY", C.FLAG_KEY), ("PUZZLE", C.FLAG_PUZZLE))
                if header.flags & bit
            ],
            "nonce": header.nonce,
            "packet_number": header.nonce >> 1,
            **section,
            "frames": [frame_to_json(f) for f in frames],
        },
        "outputs": {
            "direction_key": key.hex(),
            "header": clear.hex(),
            "box_nonce": box_nonce(direction, header.tid, header.nonce).hex(),
            "payload": payload.hex(),
            "packet": packet.hex(),
            "packet_size": len(packet),
        },
    }


def generate() -> dict[str, Any]:
    """Every vector, as the JSON-ready object ``docs/vectors.json`` holds."""
    keys, record = _keys()
    client_random = ScriptedRandom(CLIENT_EPHEMERAL_SECRET, TID.to_bytes(8, "big"))
    server_random = ScriptedRandom(DIVERSIFIER)
    wall_offset = UNIX_TIME - MONOTONIC_START
    client = Endpoint(_config(), random=client_random, wall_offset=wall_offset)
    server = Endpoint(_config(), random=server_random, server_keys=keys, wall_offset=wall_offset)

    client_key = BoxKeyPair(CLIENT_EPHEMERAL_SECRET)
    shared = client_key.shared_key(record.ephemeral)
    c2s_early = client_to_server_key(shared)
    c2s = client_to_server_key(shared, DIVERSIFIER)
    s2c = server_to_client_key(shared, DIVERSIFIER)

    # 1. The client's first packet: Hello, Create and the request, padded (0-RTT).
    now = MONOTONIC_START
    tunnel = client.connect(record, now)
    cid = tunnel.open_connection(SERVICE, retry_safe=True)
    tunnel.send(cid, REQUEST)
    first = _one(client.datagrams_to_send(now), SERVER_ADDR)

    # 2. The server's first packet: its diversifier, the ack, HelloAck and the response.
    now += ONE_WAY
    server.receive_datagram(first, CLIENT_ADDR, now)
    (server_tunnel,) = server.tunnels.values()
    for event in _events(server):
        if isinstance(event, E.DataReceived):
            server_tunnel.consume(event.cid, len(event.data))
    server_tunnel.send(cid, RESPONSE)
    answer = _one(server.datagrams_to_send(now), CLIENT_ADDR)
    if server_tunnel._send_key.key != s2c:
        raise AssertionError("the server derived another key than the key schedule")

    # 3. A data packet: the client acknowledges the answer and ends its stream.
    now += ONE_WAY
    client.receive_datagram(answer, SERVER_ADDR, now)
    for event in _events(client):
        if isinstance(event, E.DataReceived):
            tunnel.consume(event.cid, len(event.data))
    now += APP_DELAY
    tunnel.send(cid, REQUEST_END, end_stream=True)
    data = _one(client.datagrams_to_send(now), SERVER_ADDR)

    # 4. An ack-only packet: the server's delayed acknowledgement of the data packet.
    now += ONE_WAY
    server.receive_datagram(data, CLIENT_ADDR, now)
    for event in _events(server):
        if isinstance(event, E.DataReceived):
            server_tunnel.consume(event.cid, len(event.data))
    if server.datagrams_to_send(now):
        raise AssertionError("the server acknowledged a lone data packet without delay")
    sent: list[tuple[bytes, Any]] = []
    for _ in range(8):  # the endpoint's timer may wake it early: run it until the ack goes
        deadline = server.get_timer()
        if deadline is None:
            break
        now = max(now, deadline)
        server.handle_timer(now)
        sent = server.datagrams_to_send(now)
        if sent:
            break
    ack_only = _one(sent, CLIENT_ADDR)

    # 5. A rekeyed packet: the server has acknowledged a packet under c2s, so the client may
    # move the tunnel to its next TID and evolved keys; its first packet there is a probe.
    now += ONE_WAY
    client.receive_datagram(ack_only, SERVER_ADDR, now)
    _events(client)
    tunnel.rekey(now)
    rekeyed = _one(client.datagrams_to_send(now), SERVER_ADDR)
    new_tid = next_tid(c2s)
    c2s_next = evolve_key(c2s)
    if tunnel.tid != new_tid or tunnel._send_key.key != c2s_next:
        raise AssertionError("the client rekeyed to another TID or key than the key schedule")
    server.receive_datagram(rekeyed, CLIENT_ADDR, now + ONE_WAY)
    if server_tunnel.tid != new_tid:
        raise AssertionError("the server did not follow the client to its next TID")

    # 6. A stale-key answer: a first packet boxed to a key the server no longer holds gets the
    # server's current signed record back, in clear, instead of a tunnel.
    stale_random = ScriptedRandom(STALE_CLIENT_SECRET, STALE_TID.to_bytes(8, "big"))
    stale_client = Endpoint(_config(), random=stale_random, wall_offset=wall_offset)
    stale_tunnel = stale_client.connect(_old_record(), now)
    stale_tunnel.send(stale_tunnel.open_connection(SERVICE, retry_safe=True), REQUEST)
    stale_first = _one(stale_client.datagrams_to_send(now), SERVER_ADDR)
    now += ONE_WAY
    server.receive_datagram(stale_first, STALE_CLIENT_ADDR, now)
    stale_answer = _one(server.datagrams_to_send(now), STALE_CLIENT_ADDR)

    if not (client_random.exhausted and server_random.exhausted and stale_random.exhausted):
        raise AssertionError("a scripted random draw was not used")

    early_inputs = {"key": "c2s_early"}
    c2s_inputs = {"key": "c2s"}
    s2c_inputs = {"key": "s2c"}
    packets = [
        _packet_vector(
            "client_first_packet",
            "0-RTT first packet: KEY flag, client key section, Hello + Create + Stream, padded"
            " to 1200 bytes",
            first,
            c2s_early,
            C.DIRECTION_CLIENT_TO_SERVER,
            early_inputs,
        ),
        _packet_vector(
            "server_first_packet",
            "the server's answer: KEY flag, diversifier section, Ack + HelloAck + Stream",
            answer,
            s2c,
            C.DIRECTION_SERVER_TO_CLIENT,
            s2c_inputs,
        ),
        _packet_vector(
            "data_packet",
            "an established client packet: no section, Ack + Stream with FIN",
            data,
            c2s,
            C.DIRECTION_CLIENT_TO_SERVER,
            c2s_inputs,
        ),
        _packet_vector(
            "ack_only_packet",
            "the server's delayed acknowledgement: no section, one Ack frame",
            ack_only,
            s2c,
            C.DIRECTION_SERVER_TO_CLIENT,
            s2c_inputs,
        ),
        _packet_vector(
            "rekeyed_packet",
            "the client's first packet after a rekey: the next TID, the evolved c2s key",
            rekeyed,
            c2s_next,
            C.DIRECTION_CLIENT_TO_SERVER,
            {"key": "c2s_next"},
        ),
    ]
    return {
        "version": C.PROTOCOL_VERSION,
        "generator": "python -m minimalt.proto.vectors",
        "keys": {
            "client_ephemeral_secret": CLIENT_EPHEMERAL_SECRET.hex(),
            "client_ephemeral_public": client_key.public.hex(),
            "server_ephemeral_secret": SERVER_EPHEMERAL_SECRET.hex(),
            "server_ephemeral_public": record.ephemeral.hex(),
            "server_key_id": key_id(record.ephemeral).hex(),
            "shared_key": shared.hex(),
            "diversifier": DIVERSIFIER.hex(),
            "c2s_early": c2s_early.hex(),
            "c2s": c2s.hex(),
            "s2c": s2c.hex(),
            "next_tid": _hex_tid(new_tid),
            "c2s_next": c2s_next.hex(),
            "s2c_next": evolve_key(s2c).hex(),
            "auth_binding": auth_binding(shared).hex(),
            "user_seed": USER_SEED.hex(),
            "user_public": SigningKeyPair(USER_SEED).public.hex(),
        },
        "packets": packets,
        "stale_key_answer": _stale_key_vector(stale_answer, stale_first),
        "record": _record_vector(keys, record),
        "frames": _frame_vectors(auth_binding(shared), record),
    }


def _stale_key_vector(answer: bytes, first: bytes) -> dict[str, Any]:
    header = parse_header(answer)
    if not isinstance(header, Header) or header.record is None:
        raise AssertionError(f"the stale-key answer does not parse as a record packet: {header}")
    asked = parse_header(first)
    assert isinstance(asked, Header) and asked.key_id is not None
    return {
        "description": "the answer to a first packet boxed to a key the server no longer "
        "holds: its record",
        "inputs": {
            "tid": _hex_tid(header.tid),
            "stale_key_id": asked.key_id.hex(),
            "first_packet_size": len(first),
        },
        "outputs": {
            "header": answer[: C.HEADER_SIZE].hex(),
            "record": header.record.hex(),
            "packet": answer.hex(),
            "packet_size": len(answer),
        },
    }


def _record_vector(keys: ServerKeys, record: ServerRecord) -> dict[str, Any]:
    record.verify(UNIX_TIME)
    return {
        "inputs": {
            "identity_seed": SERVER_IDENTITY_SEED.hex(),
            "ephemeral_secret": SERVER_EPHEMERAL_SECRET.hex(),
            "name": record.name,
            "host": record.host,
            "port": record.port,
            "expires": record.expires,
            "version": record.version,
        },
        "outputs": {
            "identity": record.identity.hex(),
            "ephemeral": record.ephemeral.hex(),
            "key_id": record.key_id.hex(),
            "signed_part": record.signed_part().hex(),
            "signature": record.signature.hex(),
            "binary": record.to_bytes().hex(),
            "text": record.to_text(),
        },
    }


def _frame_vectors(binding: bytes, record: ServerRecord) -> list[dict[str, Any]]:
    """One encoding of every frame type, with varints of several lengths; the authenticated
    CREATE is signed by the user key for the vector tunnel (``binding``) and server."""
    user = SigningKeyPair(USER_SEED)
    signature = user.sign(auth_message(binding, record.identity, 3, b"echo"))
    examples: list[Frame] = [
        Padding(3),
        Ping(),
        Ack(((1000, 1003), (990, 995), (0, 0)), 25_000),
        Hello(C.PROTOCOL_VERSION, UNIX_TIME * 1000),
        HelloAck(-1500, True),
        Create(1, b"echo", True),
        Create(3, b"echo", False, user.public, signature),
        Refuse(3, C.ERR_UNKNOWN_SERVICE, b"unknown service"),
        Reset(5, C.ERR_APPLICATION, 70_000),
        Stream(1, 0, b"hi", False),
        Stream(4, 16_384, b"end", True),
        MaxData(16 << 20),
        MaxConnData(1, 1 << 20),
        MaxConns(1000),
        Close(C.ERR_NONE, b""),
        Datagram(7, b"\x00\xff"),
        Blocked(1 << 20),
        PathChallenge(bytes.fromhex("0123456789abcdef")),
        PathResponse(bytes.fromhex("0123456789abcdef")),
        RekeyNow(),
        NewRecord(record.to_bytes()),
    ]
    out = []
    for frame in examples:
        obj = frame_to_json(frame)
        obj["encoding"] = encode_frame(frame).hex()
        out.append(obj)
    return out


# --- rendering ---------------------------------------------------------------------------------


def to_json(vectors: dict[str, Any]) -> str:
    """The exact text of ``docs/vectors.json``."""
    return json.dumps(vectors, indent=2) + "\n"


def _wrap(hexstr: str, width: int = 64) -> str:
    return "\n".join(hexstr[i : i + width] for i in range(0, len(hexstr), width)) or "(empty)"


def _describe(obj: dict[str, Any]) -> str:
    skip = {"frame", "type", "encoding"}
    args = ", ".join(
        f"{k}={v!r}" if not isinstance(v, str) else f"{k}={v}"
        for k, v in obj.items()
        if k not in skip
    )
    return f"{obj['frame']}({args})"


def to_markdown(vectors: dict[str, Any]) -> str:
    """The test-vector section of ``docs/protocol.md``."""
    lines: list[str] = []
    keys = vectors["keys"]
    lines += ["### Keys", "", "| name | value |", "|---|---|"]
    lines += [f"| {name} | `{value}` |" for name, value in keys.items()]
    lines.append("")
    for vec in vectors["packets"]:
        inp, out = vec["inputs"], vec["outputs"]
        lines += [f"### Packet: `{vec['name']}`", "", vec["description"] + ".", ""]
        lines += ["| input | value |", "|---|---|"]
        for name, value in inp.items():
            if name != "frames":
                lines.append(f"| {name} | `{value}` |")
        lines += ["", "Frames:", ""]
        lines += [f"- `{_describe(f)}`" for f in inp["frames"]]
        lines += ["", "| output | value |", "|---|---|"]
        for name in ("direction_key", "header", "box_nonce", "packet_size"):
            lines.append(f"| {name} | `{out[name]}` |")
        lines += ["", "Payload (plaintext frames):", "", "```", _wrap(out["payload"]), "```"]
        lines += ["", "Packet:", "", "```", _wrap(out["packet"]), "```", ""]
    stale = vectors["stale_key_answer"]
    lines += ["### Packet: `stale_key_answer`", "", stale["description"] + ".", ""]
    lines += ["| input | value |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in stale["inputs"].items()]
    lines += ["", "| output | value |", "|---|---|"]
    lines += [f"| {k} | `{stale['outputs'][k]}` |" for k in ("header", "packet_size")]
    lines += ["", "The record is the server record below (binary form). Packet:", ""]
    lines += ["```", _wrap(stale["outputs"]["packet"]), "```", ""]
    rec = vectors["record"]
    lines += ["### Server record", "", "| input | value |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in rec["inputs"].items()]
    lines += ["", "| output | value |", "|---|---|"]
    for k in ("identity", "ephemeral", "key_id", "signature"):
        lines.append(f"| {k} | `{rec['outputs'][k]}` |")
    lines += ["", "Binary form:", "", "```", _wrap(rec["outputs"]["binary"]), "```", ""]
    lines += ["Text form:", "", "```", rec["outputs"]["text"], "```", ""]
    lines += ["### Frames", "", "| frame | encoding |", "|---|---|"]
    for f in vectors["frames"]:
        lines.append(f"| `{_describe(f)}` | `{f['encoding']}` |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    vectors = generate()
    sys.stdout.write(to_markdown(vectors) if "--markdown" in args else to_json(vectors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
