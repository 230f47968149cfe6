"""The test vectors of docs/protocol.md: the code still produces exactly docs/vectors.json, and
every vector decodes back to the inputs it states."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from minimalt.proto import constants as C
from minimalt.proto.crypto import (
    BoxKeyPair,
    DirectionKey,
    SigningKeyPair,
    auth_binding,
    box_nonce,
    client_to_server_key,
    evolve_key,
    key_id,
    next_tid,
    server_to_client_key,
    verify_signature,
)
from minimalt.proto.frames import Create, auth_message, decode_frames, encode_frame
from minimalt.proto.packet import Header, build_header, parse_header
from minimalt.proto.records import ServerRecord
from minimalt.proto.vectors import frame_from_json, generate, to_json, to_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMITTED = json.loads((DOCS / "vectors.json").read_text())
PACKETS = {vec["name"]: vec for vec in COMMITTED["packets"]}
H = bytes.fromhex


def test_code_still_produces_the_committed_vectors() -> None:
    vectors = generate()
    assert vectors == COMMITTED, "regenerate: python -m minimalt.proto.vectors > docs/vectors.json"
    assert to_json(vectors) == (DOCS / "vectors.json").read_text()


def test_protocol_md_shows_the_committed_vectors() -> None:
    assert to_markdown(COMMITTED) in (DOCS / "protocol.md").read_text(), (
        "regenerate the vector section: python -m minimalt.proto.vectors --markdown"
    )


def test_module_prints_the_vectors_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "minimalt.proto.vectors"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert json.loads(out) == COMMITTED


def test_keys_follow_from_the_secrets() -> None:
    keys = COMMITTED["keys"]
    client = BoxKeyPair(H(keys["client_ephemeral_secret"]))
    server = BoxKeyPair(H(keys["server_ephemeral_secret"]))
    assert client.public.hex() == keys["client_ephemeral_public"]
    assert server.public.hex() == keys["server_ephemeral_public"]
    assert key_id(server.public).hex() == keys["server_key_id"]
    shared = client.shared_key(server.public)
    assert shared == server.shared_key(client.public)
    assert shared.hex() == keys["shared_key"]
    assert client_to_server_key(shared).hex() == keys["c2s_early"]
    assert client_to_server_key(shared, H(keys["diversifier"])).hex() == keys["c2s"]
    assert server_to_client_key(shared, H(keys["diversifier"])).hex() == keys["s2c"]
    c2s = client_to_server_key(shared, H(keys["diversifier"]))
    assert f"0x{next_tid(c2s):016x}" == keys["next_tid"]
    assert evolve_key(c2s).hex() == keys["c2s_next"]
    assert evolve_key(H(keys["s2c"])).hex() == keys["s2c_next"]
    assert auth_binding(shared).hex() == keys["auth_binding"]
    assert SigningKeyPair(H(keys["user_seed"])).public.hex() == keys["user_public"]


@pytest.mark.parametrize("name", sorted(PACKETS))
def test_packet_vector_decodes_to_its_inputs(name: str) -> None:
    vec = PACKETS[name]
    inp, out = vec["inputs"], vec["outputs"]
    packet = H(out["packet"])
    assert len(packet) == out["packet_size"]
    c2s = inp["direction"] == "client_to_server"
    direction = C.DIRECTION_CLIENT_TO_SERVER if c2s else C.DIRECTION_SERVER_TO_CLIENT
    key = COMMITTED["keys"][inp["key"]]
    assert out["direction_key"] == key

    header = parse_header(packet)
    assert isinstance(header, Header)
    assert header.tid == int(inp["tid"], 16)
    assert header.nonce == inp["nonce"]
    assert header.nonce >> 1 == inp["packet_number"]
    assert header.from_client == c2s
    assert (header.flags == C.FLAG_KEY) == (inp["flags"] == ["KEY"])
    assert packet[: header.box_offset].hex() == out["header"]
    if "client_public" in inp:
        assert header.client_public.hex() == inp["client_public"]
        assert header.key_id.hex() == inp["key_id"]
    elif "diversifier" in inp:
        assert header.diversifier.hex() == inp["diversifier"]
    else:
        assert header.box_offset == C.HEADER_SIZE
    assert box_nonce(direction, header.tid, header.nonce).hex() == out["box_nonce"]

    payload = DirectionKey(H(key), direction).open(
        packet[header.box_offset :], header.tid, header.nonce
    )
    assert payload is not None and payload.hex() == out["payload"]
    frames = [frame_from_json(f) for f in inp["frames"]]
    assert decode_frames(payload) == frames
    assert [encode_frame(f)[0] for f in frames] == [f["type"] for f in inp["frames"]]

    # And the other way: the stated inputs build the packet.
    clear = build_header(
        int(inp["tid"], 16),
        inp["nonce"],
        client_public=H(inp["client_public"]) if "client_public" in inp else None,
        key_id=H(inp["key_id"]) if "key_id" in inp else None,
        diversifier=H(inp["diversifier"]) if "diversifier" in inp else None,
    )
    body = b"".join(encode_frame(f) for f in frames)
    assert DirectionKey(H(key), direction).seal(clear, header.tid, header.nonce, body) == packet


def test_first_packet_carries_the_client_key_and_is_padded() -> None:
    vec = PACKETS["client_first_packet"]
    keys = COMMITTED["keys"]
    assert vec["outputs"]["packet_size"] == C.MIN_FIRST_PACKET_SIZE
    assert vec["inputs"]["client_public"] == keys["client_ephemeral_public"]
    assert vec["inputs"]["key_id"] == keys["server_key_id"]
    assert [f["frame"] for f in vec["inputs"]["frames"]] == ["Hello", "Create", "Stream", "Padding"]


def test_server_first_packet_carries_the_diversifier() -> None:
    vec = PACKETS["server_first_packet"]
    assert vec["inputs"]["diversifier"] == COMMITTED["keys"]["diversifier"]
    assert vec["inputs"]["nonce"] % 2 == C.SERVER_NONCE_PARITY


def test_ack_only_packet_is_one_ack_frame() -> None:
    frames = PACKETS["ack_only_packet"]["inputs"]["frames"]
    assert [f["frame"] for f in frames] == ["Ack"]


def test_record_vector() -> None:
    rec = COMMITTED["record"]
    inp, out = rec["inputs"], rec["outputs"]
    identity = SigningKeyPair(H(inp["identity_seed"]))
    ephemeral = BoxKeyPair(H(inp["ephemeral_secret"]))
    assert identity.public.hex() == out["identity"]
    assert ephemeral.public.hex() == out["ephemeral"]
    record = ServerRecord.from_text(out["text"])
    assert record == ServerRecord.from_bytes(H(out["binary"]))
    assert record.to_bytes().hex() == out["binary"]
    assert record.signed_part().hex() == out["signed_part"]
    assert out["binary"] == out["signed_part"] + out["signature"]
    assert identity.sign(record.signed_part()).hex() == out["signature"]
    assert record.key_id.hex() == out["key_id"]
    assert (record.name, record.host, record.port, record.expires, record.version) == (
        inp["name"],
        inp["host"],
        inp["port"],
        inp["expires"],
        inp["version"],
    )
    record.verify(inp["expires"] - 1, identity=identity.public)


@pytest.mark.parametrize("index", range(len(COMMITTED["frames"])))
def test_frame_vector(index: int) -> None:
    vec = COMMITTED["frames"][index]
    frame = frame_from_json(vec)
    assert encode_frame(frame).hex() == vec["encoding"]
    assert decode_frames(H(vec["encoding"])) == [frame]


def test_authenticated_create_vector_verifies_on_the_vector_tunnel_only() -> None:
    keys = COMMITTED["keys"]
    (create,) = [
        frame_from_json(f) for f in COMMITTED["frames"] if f["frame"] == "Create" and "user" in f
    ]
    assert isinstance(create, Create) and create.user.hex() == keys["user_public"]
    identity = H(COMMITTED["record"]["outputs"]["identity"])
    message = auth_message(H(keys["auth_binding"]), identity, create.cid, create.service)
    assert verify_signature(create.user, message, create.signature)
    other_tunnel = auth_message(bytes(32), identity, create.cid, create.service)
    assert not verify_signature(create.user, other_tunnel, create.signature)


def test_rekeyed_packet_uses_the_next_tid_and_evolved_key() -> None:
    vec = PACKETS["rekeyed_packet"]
    keys = COMMITTED["keys"]
    assert vec["inputs"]["tid"] == keys["next_tid"] != PACKETS["data_packet"]["inputs"]["tid"]
    assert vec["inputs"]["key"] == "c2s_next"
    # Nonces keep increasing across the rekey: never reused under any key.
    assert vec["inputs"]["nonce"] > PACKETS["data_packet"]["inputs"]["nonce"]


def test_stale_key_answer_is_the_current_record_in_clear() -> None:
    vec = COMMITTED["stale_key_answer"]
    packet = H(vec["outputs"]["packet"])
    header = parse_header(packet)
    assert isinstance(header, Header)
    assert header.flags == C.FLAG_KEY | C.FLAG_PUZZLE and header.nonce == 0
    assert header.tid == int(vec["inputs"]["tid"], 16)
    record = H(COMMITTED["record"]["outputs"]["binary"])
    assert header.record == H(vec["outputs"]["record"]) == record
    assert packet == build_header(header.tid, 0, record=header.record)
    assert ServerRecord.from_bytes(header.record).key_id.hex() != vec["inputs"]["stale_key_id"]
    # Amplification: the stateless answer is smaller than the first packet it answers.
    assert vec["outputs"]["packet_size"] < vec["inputs"]["first_packet_size"]
