"""NaCl crypto for minimalt: keys, the per-tunnel precomputed box, box-nonce derivation, sealing.

Everything here is deterministic given its inputs: randomness comes in as bytes from the caller.
The per-packet path (``DirectionKey.seal_into`` / ``open``) calls libsodium's
``crypto_secretbox_easy`` through cffi once per packet, writing straight into the output
buffer, because pynacl's wrappers cost as much as the cipher on small packets (DESIGN §16).
"""

from __future__ import annotations

import hashlib as _hashlib
import struct
from typing import Protocol

import nacl.bindings as _nb
import nacl.signing
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from .constants import (
    BOX_NONCE_SIZE,
    BOX_TAG_SIZE,
    KEY_ID_SIZE,
    PUBLIC_KEY_SIZE,
    TID_MASK,
)

KEY_SIZE = 32
_BOX_NONCE = struct.Struct(">BQQ7x")  # direction, 62-bit TID, 64-bit nonce, zero padding
assert _BOX_NONCE.size == BOX_NONCE_SIZE

_PERSON_C2S = b"minimalt-c2s"
_PERSON_C2S_1RTT = b"minimalt-c2s1"
_PERSON_S2C = b"minimalt-s2c"
_PERSON_REKEY = b"minimalt-rekey"
_PERSON_KEY_ID = b"minimalt-keyid"
_PERSON_AUTH = b"minimalt-auth"
_PERSON_TID = b"minimalt-tid"


def blake2b(data: bytes, *, key: bytes = b"", person: bytes = b"", size: int = 32) -> bytes:
    """BLAKE2b with a key and a personalisation string: the same function as libsodium's
    ``crypto_generichash_blake2b_salt_personal`` (zero salt, person padded with zeros), through
    ``hashlib``, whose call costs ~0.6 µs against pynacl's ~4.6 µs."""
    return _hashlib.blake2b(data, digest_size=size, key=key, person=person).digest()


def box_nonce(direction: int, tid: int, nonce: int) -> bytes:
    """The 24-byte XSalsa20 nonce for one packet: injective in (direction, TID, nonce)."""
    return _BOX_NONCE.pack(direction, tid & TID_MASK, nonce)


class BoxKeyPair:
    """An X25519 key pair (client ephemeral, server ephemeral or server long-term boxing key)."""

    __slots__ = ("secret", "public")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_SIZE:
            raise ValueError("an X25519 secret key is 32 bytes")
        self.secret = bytes(secret)
        self.public = _nb.crypto_scalarmult_base(self.secret)

    @classmethod
    def generate(cls, random: RandomSource) -> BoxKeyPair:
        return cls(random(KEY_SIZE))

    def shared_key(self, peer_public: bytes) -> bytes:
        """NaCl's precomputed box key (``crypto_box_beforenm``): X25519 then HSalsa20."""
        if len(peer_public) != PUBLIC_KEY_SIZE:
            raise ValueError("an X25519 public key is 32 bytes")
        return _nb.crypto_box_beforenm(peer_public, self.secret)


class SigningKeyPair:
    """An Ed25519 key pair: a server's (or user's) long-term identity."""

    __slots__ = ("_key", "public")

    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(bytes(seed))
        self.public = bytes(self._key.verify_key)

    @classmethod
    def generate(cls, random: RandomSource) -> SigningKeyPair:
        return cls(random(KEY_SIZE))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of ``message``."""
        return self._key.sign(message).signature


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s Ed25519 signature of ``message``."""
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except Exception:  # BadSignatureError, or a malformed key/signature: all mean "not valid"
        return False
    return True


_CURVE25519_P = 2**255 - 19


def is_canonical_public_key(public: bytes) -> bool:
    """True for the one canonical encoding of an X25519 u-coordinate (below 2^255 - 19).

    X25519 ignores the top bit and reduces mod p, so several byte strings give the same
    shared key; accepting only the canonical one keeps a flipped bit in the clear key section
    from authenticating as the same client."""
    return int.from_bytes(public, "little") < _CURVE25519_P


def key_id(server_public: bytes) -> bytes:
    """The 4-byte identifier of a server ephemeral key that a client puts in its first packets."""
    return blake2b(server_public, person=_PERSON_KEY_ID, size=KEY_ID_SIZE)


def client_to_server_key(shared: bytes, diversifier: bytes | None = None) -> bytes:
    """A client->server key from the precomputed box key.

    Without ``diversifier``: the *early* key of the client's first-flight packets (the ones
    carrying its public key). With the server's diversifier: the key of every later client
    packet. Only a client that received a server packet knows the diversifier, so a packet
    under the later key proves its sender's address (DESIGN §7.4)."""
    if diversifier is None:
        return blake2b(b"", key=shared, person=_PERSON_C2S)
    return blake2b(diversifier, key=shared, person=_PERSON_C2S_1RTT)


def server_to_client_key(shared: bytes, diversifier: bytes) -> bytes:
    """The server->client key: mixes in the server's fresh random diversifier, so a replayed
    first packet never makes a server (or a twin instance) encrypt under a key used before."""
    return blake2b(diversifier, key=shared, person=_PERSON_S2C)


def auth_binding(shared: bytes) -> bytes:
    """A value only the tunnel's two ends know, that user authenticators are bound to."""
    return blake2b(b"", key=shared, person=_PERSON_AUTH)


def next_tid(client_to_server: bytes) -> int:
    """The tunnel ID of the next key epoch, derived from the current client->server key: both
    ends know it in advance, observers cannot link it to the current one."""
    raw = blake2b(b"", key=client_to_server, person=_PERSON_TID, size=8)
    return int.from_bytes(raw, "big") & TID_MASK


def evolve_key(key: bytes) -> bytes:
    """The next key of a direction after a rekey: one-way, so old traffic stays secret."""
    return blake2b(b"", key=key, person=_PERSON_REKEY)


# One scratch buffer for every key: the core is single-threaded and never re-enters a seal or
# an open, and a 2 KiB buffer per key would dominate an idle tunnel's memory.
_scratch = bytearray(1 << 16)
_scratch_ptr = _ffi.from_buffer(_scratch)


class DirectionKey:
    """The symmetric XSalsa20-Poly1305 key of one direction of one tunnel."""

    __slots__ = ("key", "direction")

    def __init__(self, key: bytes, direction: int) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("a direction key is 32 bytes")
        self.key = key
        self.direction = direction

    def seal(self, header: bytes, tid: int, nonce: int, plaintext: bytes) -> bytes:
        """``header`` followed by the box (tag, ciphertext) of ``plaintext``."""
        hlen = len(header)
        total = hlen + BOX_TAG_SIZE + len(plaintext)
        if total > len(_scratch):
            raise ValueError("packet larger than 64 KiB")
        _scratch[:hlen] = header
        _lib.crypto_secretbox_easy(
            _scratch_ptr + hlen,
            plaintext,
            len(plaintext),
            _BOX_NONCE.pack(self.direction, tid & TID_MASK, nonce),
            self.key,
        )
        return bytes(memoryview(_scratch)[:total])

    def seal_parts(self, header: bytes, tid: int, nonce: int, parts: list[bytes]) -> bytes:
        """``seal(header, tid, nonce, b"".join(parts))`` without the join: the parts are
        written straight behind the tag's room and sealed in place (the packet path)."""
        hlen = len(header)
        start = hlen + BOX_TAG_SIZE
        pos = start
        for part in parts:
            end = pos + len(part)
            _scratch[pos:end] = part
            pos = end
        if pos > len(_scratch):
            raise ValueError("packet larger than 64 KiB")
        _scratch[:hlen] = header
        _lib.crypto_secretbox_easy(  # libsodium allows m == c + MACBYTES: in place
            _scratch_ptr + hlen,
            _scratch_ptr + start,
            pos - start,
            _BOX_NONCE.pack(self.direction, tid & TID_MASK, nonce),
            self.key,
        )
        return bytes(memoryview(_scratch)[:pos])

    def open(self, box: bytes | memoryview, tid: int, nonce: int) -> bytes | None:
        """The plaintext of ``box`` (tag then ciphertext), or None if it does not authenticate."""
        blen = len(box)
        if blen < BOX_TAG_SIZE or blen - BOX_TAG_SIZE > len(_scratch):
            return None
        mlen = blen - BOX_TAG_SIZE
        rc = _lib.crypto_secretbox_open_easy(
            _scratch_ptr,
            _ffi.from_buffer(box),
            blen,
            _BOX_NONCE.pack(self.direction, tid & TID_MASK, nonce),
            self.key,
        )
        if rc != 0:
            return None
        return bytes(memoryview(_scratch)[:mlen])


class RandomSource(Protocol):
    """Type of the injected randomness: a callable returning ``n`` random bytes (os.urandom
    in the runtime, a seeded generator in tests)."""

    def __call__(self, n: int, /) -> bytes: ...


class SeededRandom:
    """A deterministic byte stream for tests and simulations (BLAKE2b in counter mode).

    Never use it for real keys: its output is only as secret as its seed.
    """

    __slots__ = ("_seed", "_counter")

    def __init__(self, seed: int | bytes = 0) -> None:
        self._seed = seed if isinstance(seed, bytes) else seed.to_bytes(16, "big", signed=False)
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += blake2b(
                self._counter.to_bytes(8, "big"), key=self._seed[:64] or b"\x00", size=64
            )
            self._counter += 1
        return bytes(out[:n])
