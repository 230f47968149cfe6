"""Crypto: known-answer tests (RFC 7748 X25519, NaCl crypto_box), the box-nonce layout and its
injectivity, the key schedule of docs/protocol.md §3, and DirectionKey sealing.

Vector sources: RFC 7748 §5.2 and §6.1; NaCl's tests/box.c, tests/core1.c and tests/secretbox.c
as kept in libsodium's test/default/ (box.c, box.exp, secretbox.c).
"""

from __future__ import annotations

import hashlib
import os

import nacl.bindings as nb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimalt.proto import constants as C
from minimalt.proto.crypto import (
    BoxKeyPair,
    DirectionKey,
    SeededRandom,
    auth_binding,
    blake2b,
    box_nonce,
    client_to_server_key,
    evolve_key,
    key_id,
    next_tid,
    server_to_client_key,
)

H = bytes.fromhex

# --- RFC 7748 ----------------------------------------------------------------------------------

# §5.2: (scalar, input u-coordinate, output u-coordinate)
RFC7748_X25519 = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        # The input u has its top bit set: X25519 must ignore it (RFC 7748 §5).
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]
ITERATED_1 = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
ITERATED_1000 = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
ITERATED_1000000 = "7c3911e0ab2586fd864497297e575e6f3bc601c0883c30df5f4dd2d24f665424"

# §6.1 (also the keys of NaCl's box tests: alicesk, alicepk, bobsk, bobpk)
ALICE_SK = H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PK = H("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_SK = H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PK = H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED_K = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


@pytest.mark.parametrize(("scalar", "u", "expected"), RFC7748_X25519)
def test_x25519_rfc7748_vectors(scalar: str, u: str, expected: str) -> None:
    assert nb.crypto_scalarmult(H(scalar), H(u)).hex() == expected


def _iterate_x25519(n: int) -> bytes:
    k = u = (9).to_bytes(32, "little")
    for _ in range(n):
        k, u = nb.crypto_scalarmult(k, u), k
    return k


def test_x25519_rfc7748_one_iteration() -> None:
    assert _iterate_x25519(1).hex() == ITERATED_1


def test_x25519_rfc7748_thousand_iterations() -> None:
    assert _iterate_x25519(1000).hex() == ITERATED_1000


@pytest.mark.skipif(
    not os.environ.get("MINIMALT_SLOW_TESTS"),
    reason="1,000,000 X25519 iterations take ~30-40 s; the 1 and 1,000 ones run "
    "(MINIMALT_SLOW_TESTS=1 runs this one too)",
)
def test_x25519_rfc7748_million_iterations() -> None:
    assert _iterate_x25519(1_000_000).hex() == ITERATED_1000000


def test_x25519_rfc7748_diffie_hellman() -> None:
    alice, bob = BoxKeyPair(ALICE_SK), BoxKeyPair(BOB_SK)
    assert alice.public == ALICE_PK
    assert bob.public == BOB_PK
    assert nb.crypto_scalarmult(ALICE_SK, BOB_PK) == SHARED_K
    assert nb.crypto_scalarmult(BOB_SK, ALICE_PK) == SHARED_K


# --- NaCl crypto_box ---------------------------------------------------------------------------

NACL_NONCE = H("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
NACL_MESSAGE = H(
    "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc"
    "e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31"
    "0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde"
    "048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864"
    "5e0705"
)
# box.exp: c[16..163], i.e. the Poly1305 tag (16 bytes) then the ciphertext (131 bytes).
NACL_BOX = H(
    "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce"
    "48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972"
    "71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae"
    "90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3"
    "7973f622a43d14a6599b1f654cb45a74e355a5"
)
# core1.c / secretbox.c: HSalsa20 of the X25519 shared secret, i.e. crypto_box_beforenm.
NACL_FIRSTKEY = H("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")


def test_nacl_box_vector() -> None:
    assert len(NACL_MESSAGE) == 131 and len(NACL_BOX) == 147
    assert nb.crypto_box(NACL_MESSAGE, NACL_NONCE, BOB_PK, ALICE_SK) == NACL_BOX
    assert nb.crypto_box_open(NACL_BOX, NACL_NONCE, ALICE_PK, BOB_SK) == NACL_MESSAGE


def test_beforenm_is_the_nacl_firstkey_from_both_sides() -> None:
    assert BoxKeyPair(ALICE_SK).shared_key(BOB_PK) == NACL_FIRSTKEY
    assert BoxKeyPair(BOB_SK).shared_key(ALICE_PK) == NACL_FIRSTKEY


def test_precomputed_box_gives_the_nacl_box() -> None:
    assert nb.crypto_box_afternm(NACL_MESSAGE, NACL_NONCE, NACL_FIRSTKEY) == NACL_BOX
    assert nb.crypto_secretbox(NACL_MESSAGE, NACL_NONCE, NACL_FIRSTKEY) == NACL_BOX


# --- box nonce ---------------------------------------------------------------------------------


def test_box_nonce_layout() -> None:
    nonce = box_nonce(C.DIRECTION_CLIENT_TO_SERVER, 0x0123456789ABCDEF, 0x1122334455667788)
    assert nonce == H("430123456789abcdef112233445566778800000000000000")
    assert len(nonce) == C.BOX_NONCE_SIZE


def test_box_nonce_ignores_the_flag_bits_of_the_tid() -> None:
    tid = 0x0123456789ABCDEF
    flagged = tid | C.FLAG_KEY | C.FLAG_PUZZLE
    assert box_nonce(C.DIRECTION_SERVER_TO_CLIENT, flagged, 2) == box_nonce(
        C.DIRECTION_SERVER_TO_CLIENT, tid, 2
    )


DIRECTIONS = st.sampled_from([C.DIRECTION_CLIENT_TO_SERVER, C.DIRECTION_SERVER_TO_CLIENT])
TIDS = st.integers(0, C.TID_MASK)
NONCES = st.integers(0, 2**64 - 1)


@given(DIRECTIONS, TIDS, NONCES, DIRECTIONS, TIDS, NONCES)
def test_box_nonce_is_injective(d1: int, t1: int, n1: int, d2: int, t2: int, n2: int) -> None:
    same_input = (d1, t1, n1) == (d2, t2, n2)
    assert (box_nonce(d1, t1, n1) == box_nonce(d2, t2, n2)) == same_input


@given(TIDS, NONCES)
def test_box_nonce_differs_between_directions(tid: int, nonce: int) -> None:
    assert box_nonce(C.DIRECTION_CLIENT_TO_SERVER, tid, nonce) != box_nonce(
        C.DIRECTION_SERVER_TO_CLIENT, tid, nonce
    )


# --- key schedule ------------------------------------------------------------------------------

SHARED = bytes(range(32))


def _blake2b(data: bytes, key: bytes, person: bytes, size: int = 32) -> bytes:
    """The spec's BLAKE2b, from an implementation independent of libsodium."""
    return hashlib.blake2b(data, key=key, person=person, digest_size=size).digest()


def test_key_schedule_matches_the_spec_formulas() -> None:
    diversifier = bytes(range(100, 116))
    server_public = bytes(range(50, 82))
    assert client_to_server_key(SHARED) == _blake2b(b"", SHARED, b"minimalt-c2s")
    assert client_to_server_key(SHARED, diversifier) == _blake2b(
        diversifier, SHARED, b"minimalt-c2s1"
    )
    assert server_to_client_key(SHARED, diversifier) == _blake2b(
        diversifier, SHARED, b"minimalt-s2c"
    )
    assert evolve_key(SHARED) == _blake2b(b"", SHARED, b"minimalt-rekey")
    raw_tid = int.from_bytes(_blake2b(b"", SHARED, b"minimalt-tid", 8), "big")
    assert next_tid(SHARED) == raw_tid & C.TID_MASK
    assert auth_binding(SHARED) == _blake2b(b"", SHARED, b"minimalt-auth")
    assert key_id(server_public) == _blake2b(server_public, b"", b"minimalt-keyid", 4)
    assert blake2b(b"x", key=b"k", person=b"p", size=20) == _blake2b(b"x", b"k", b"p", 20)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16))
def test_diversifier_keys_the_server_and_later_client_keys_only(d1: bytes, d2: bytes) -> None:
    early = client_to_server_key(SHARED)
    s2c_1, s2c_2 = server_to_client_key(SHARED, d1), server_to_client_key(SHARED, d2)
    c2s_1, c2s_2 = client_to_server_key(SHARED, d1), client_to_server_key(SHARED, d2)
    assert (s2c_1 == s2c_2) == (d1 == d2)
    assert (c2s_1 == c2s_2) == (d1 == d2)
    # The early key is the same whatever the server answers, and unlike every later key.
    assert len({early, s2c_1, c2s_1}) == 3
    assert early not in (s2c_2, c2s_2)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_direction_keys_depend_on_the_shared_key(a: bytes, b: bytes) -> None:
    d = bytes(16)
    assert (client_to_server_key(a) == client_to_server_key(b)) == (a == b)
    assert (client_to_server_key(a, d) == client_to_server_key(b, d)) == (a == b)
    assert (server_to_client_key(a, d) == server_to_client_key(b, d)) == (a == b)


def test_evolve_key_is_a_deterministic_chain_of_new_keys() -> None:
    chain = [SHARED]
    for _ in range(8):
        chain.append(evolve_key(chain[-1]))
    assert len(set(chain)) == len(chain)
    assert evolve_key(SHARED) == chain[1]
    assert all(len(k) == 32 for k in chain)


def test_key_id_is_four_bytes_and_depends_on_the_key() -> None:
    a, b = BoxKeyPair(bytes(32)).public, BoxKeyPair(bytes(31) + b"\x01").public
    assert len(key_id(a)) == C.KEY_ID_SIZE
    assert key_id(a) != key_id(b)


def test_keypair_rejects_wrong_lengths() -> None:
    with pytest.raises(ValueError):
        BoxKeyPair(bytes(31))
    with pytest.raises(ValueError):
        BoxKeyPair(bytes(32)).shared_key(bytes(33))
    with pytest.raises(ValueError):
        DirectionKey(bytes(16), C.DIRECTION_CLIENT_TO_SERVER)


def test_seeded_random_is_deterministic_per_seed() -> None:
    assert SeededRandom(7)(100) == SeededRandom(7)(100)
    assert SeededRandom(7)(100) != SeededRandom(8)(100)


# --- DirectionKey ------------------------------------------------------------------------------

KEY = bytes(range(200, 232))
TID = 0x0123456789ABCDEF
HEADER = bytes(range(16))


def test_seal_is_header_then_secretbox_under_the_derived_nonce() -> None:
    key = DirectionKey(KEY, C.DIRECTION_SERVER_TO_CLIENT)
    packet = key.seal(HEADER, TID, 42, b"payload")
    expected_box = nb.crypto_secretbox(
        b"payload", box_nonce(C.DIRECTION_SERVER_TO_CLIENT, TID, 42), KEY
    )
    assert packet == HEADER + expected_box
    assert len(packet) == len(HEADER) + C.BOX_TAG_SIZE + len(b"payload")


@given(st.binary(max_size=3000), NONCES, TIDS)
def test_seal_open_round_trip(plaintext: bytes, nonce: int, tid: int) -> None:
    sender = DirectionKey(KEY, C.DIRECTION_CLIENT_TO_SERVER)
    receiver = DirectionKey(KEY, C.DIRECTION_CLIENT_TO_SERVER)
    packet = sender.seal(HEADER, tid, nonce, plaintext)
    assert receiver.open(packet[len(HEADER) :], tid, nonce) == plaintext
    assert receiver.open(memoryview(packet)[len(HEADER) :], tid, nonce) == plaintext


def test_open_rejects_every_flipped_bit() -> None:
    key = DirectionKey(KEY, C.DIRECTION_CLIENT_TO_SERVER)
    box = key.seal(b"", TID, 7, b"a short payload")
    for i in range(len(box)):
        for bit in range(8):
            tampered = bytearray(box)
            tampered[i] ^= 1 << bit
            assert key.open(bytes(tampered), TID, 7) is None, (i, bit)
    assert key.open(box, TID, 7) == b"a short payload"


def test_open_rejects_other_tid_nonce_direction_or_key() -> None:
    key = DirectionKey(KEY, C.DIRECTION_CLIENT_TO_SERVER)
    box = key.seal(b"", TID, 7, b"data")
    assert key.open(box, TID ^ 1, 7) is None
    assert key.open(box, TID, 9) is None
    assert DirectionKey(KEY, C.DIRECTION_SERVER_TO_CLIENT).open(box, TID, 7) is None
    assert DirectionKey(evolve_key(KEY), C.DIRECTION_CLIENT_TO_SERVER).open(box, TID, 7) is None


@pytest.mark.parametrize("size", [0, 1, C.BOX_TAG_SIZE - 1])
def test_open_rejects_boxes_shorter_than_the_tag(size: int) -> None:
    assert DirectionKey(KEY, C.DIRECTION_CLIENT_TO_SERVER).open(bytes(size), TID, 1) is None


def test_empty_plaintext_seals_to_a_bare_tag() -> None:
    key = DirectionKey(KEY, C.DIRECTION_CLIENT_TO_SERVER)
    box = key.seal(b"", TID, 1, b"")
    assert len(box) == C.BOX_TAG_SIZE
    assert key.open(box, TID, 1) == b""


def test_seal_parts_is_seal_of_the_joined_parts() -> None:
    key = DirectionKey(bytes(range(32)), C.DIRECTION_CLIENT_TO_SERVER)
    parts = [b"\x02\x00", b"frame header", bytes(range(200)) * 5, b""]
    header = bytes(16)
    assert key.seal_parts(header, 7, 9, parts) == key.seal(header, 7, 9, b"".join(parts))
