"""Server records: the signed public facts a client needs to open a 0-RTT tunnel.

A record binds a server name, address and port to its long-term Ed25519 identity and to the
ephemeral X25519 key the client boxes its first packet to, until ``expires`` (Unix seconds).
Binary form (all integers big-endian):

    magic "MLTR" · version (1) · name (1-byte length, UTF-8) · host (1-byte length, UTF-8) ·
    port (2) · identity key (32) · ephemeral key (32) · expires (8) · signature (64)

The signature is the identity key's Ed25519 signature over everything before it. The text
form is ``mlt1:`` followed by the binary form in unpadded URL-safe base64.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field

from .constants import PROTOCOL_VERSION, PUBLIC_KEY_SIZE
from .crypto import BoxKeyPair, RandomSource, SigningKeyPair, key_id, verify_signature

RECORD_MAGIC = b"MLTR"
TEXT_PREFIX = "mlt1:"
SIGNATURE_SIZE = 64
_TAIL = struct.Struct(">H32s32sQ")


class RecordError(ValueError):
    """A record is malformed, expired, or not signed by the identity it names."""


@dataclass(frozen=True)
class ServerRecord:
    name: str
    host: str
    port: int
    identity: bytes  # Ed25519 public key (32)
    ephemeral: bytes  # X25519 public key (32)
    expires: int  # Unix seconds
    version: int = PROTOCOL_VERSION
    signature: bytes = field(default=b"", repr=False)

    def signed_part(self) -> bytes:
        name = self.name.encode()
        host = self.host.encode()
        if len(name) > 255 or len(host) > 255:
            raise RecordError("name and host are at most 255 bytes")
        if not 0 <= self.port <= 0xFFFF:
            raise RecordError(f"port out of range: {self.port}")
        return (
            RECORD_MAGIC
            + bytes((self.version, len(name)))
            + name
            + bytes((len(host),))
            + host
            + _TAIL.pack(self.port, self.identity, self.ephemeral, self.expires)
        )

    def to_bytes(self) -> bytes:
        return self.signed_part() + self.signature

    def to_text(self) -> str:
        return TEXT_PREFIX + base64.urlsafe_b64encode(self.to_bytes()).rstrip(b"=").decode()

    @property
    def key_id(self) -> bytes:
        return key_id(self.ephemeral)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @classmethod
    def from_bytes(cls, data: bytes) -> ServerRecord:
        """Parse without checking signature or expiry (see ``verify``)."""
        try:
            if data[:4] != RECORD_MAGIC:
                raise RecordError("not a minimalt record (bad magic)")
            version, name_len = data[4], data[5]
            pos = 6
            name = data[pos : pos + name_len].decode()
            pos += name_len
            host_len = data[pos]
            pos += 1
            host = data[pos : pos + host_len].decode()
            pos += host_len
            if len(data) != pos + _TAIL.size + SIGNATURE_SIZE:
                raise RecordError("record has the wrong length")
            port, identity, ephemeral, expires = _TAIL.unpack_from(data, pos)
            signature = data[pos + _TAIL.size :]
        except (IndexError, UnicodeDecodeError, struct.error) as exc:
            raise RecordError(f"malformed record: {exc}") from exc
        return cls(name, host, port, identity, ephemeral, expires, version, signature)

    @classmethod
    def from_text(cls, text: str) -> ServerRecord:
        text = text.strip()
        if not text.startswith(TEXT_PREFIX):
            raise RecordError(f"a record's text form starts with {TEXT_PREFIX!r}")
        body = text[len(TEXT_PREFIX) :]
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        except ValueError as exc:
            raise RecordError(f"record text is not base64: {exc}") from exc
        return cls.from_bytes(raw)

    def verify(self, now_unix: float, identity: bytes | None = None) -> None:
        """Raise RecordError unless the record is signed by its identity (or by ``identity``
        when given), of our protocol version, and not expired at ``now_unix``."""
        if identity is not None and identity != self.identity:
            raise RecordError("record is signed by another identity than expected")
        if self.version != PROTOCOL_VERSION:
            raise RecordError(f"unsupported protocol version {self.version}")
        if len(self.identity) != PUBLIC_KEY_SIZE or len(self.ephemeral) != PUBLIC_KEY_SIZE:
            raise RecordError("record keys have the wrong length")
        if not verify_signature(self.identity, self.signed_part(), self.signature):
            raise RecordError("record signature does not verify")
        if now_unix >= self.expires:
            raise RecordError("record has expired")


@dataclass
class EphemeralKey:
    keypair: BoxKeyPair
    expires: int
    #: Unix time the key was made (0 if unknown).
    created: float = 0.0
    #: True when this process made the key and never shared it: no other replay cache can
    #: have seen first packets boxed to it. False for keys loaded from disk or shared with
    #: replicas: after a restart, early data to them waits out the freshness window.
    exclusive: bool = False

    @property
    def key_id(self) -> bytes:
        return key_id(self.keypair.public)


class ServerKeys:
    """A server's long-term identity and its ephemeral boxing keys, looked up by key id."""

    def __init__(self, identity: SigningKeyPair, name: str = "") -> None:
        self.identity = identity
        self.name = name
        self._ephemeral: dict[bytes, EphemeralKey] = {}
        self.current: EphemeralKey | None = None

    @classmethod
    def generate(
        cls, random: RandomSource, *, name: str = "", now_unix: float, lifetime: int = 3600
    ) -> ServerKeys:
        keys = cls(SigningKeyPair.generate(random), name)
        keys.add_ephemeral(
            BoxKeyPair.generate(random), int(now_unix) + lifetime, created=now_unix,
            exclusive=True,
        )
        return keys

    def add_ephemeral(
        self, keypair: BoxKeyPair, expires: int, *, created: float = 0.0, exclusive: bool = False
    ) -> EphemeralKey:
        key = EphemeralKey(keypair, expires, created, exclusive)
        self._ephemeral[key.key_id] = key
        self.current = key
        return key

    def remove_ephemeral(self, kid: bytes) -> None:
        self._ephemeral.pop(kid, None)

    def lookup(self, kid: bytes, now_unix: float) -> EphemeralKey | None:
        """The ephemeral key a client's first packet names, if we still hold it and it is valid."""
        key = self._ephemeral.get(bytes(kid))
        if key is None or now_unix >= key.expires:
            return None
        return key

    def record(self, host: str, port: int) -> ServerRecord:
        """The signed record for the current ephemeral key at ``host``:``port``."""
        if self.current is None:
            raise ValueError("no ephemeral key")
        unsigned = ServerRecord(
            self.name, host, port, self.identity.public, self.current.keypair.public,
            self.current.expires,
        )
        return ServerRecord(
            unsigned.name, host, port, unsigned.identity, unsigned.ephemeral, unsigned.expires,
            unsigned.version, self.identity.sign(unsigned.signed_part()),
        )
