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
import math
import re
import struct
from dataclasses import dataclass, field

from .constants import PROTOCOL_VERSION, PUBLIC_KEY_SIZE
from .crypto import BoxKeyPair, RandomSource, SigningKeyPair, key_id, verify_signature

RECORD_MAGIC = b"MLTR"
TEXT_PREFIX = "mlt1:"
_URLSAFE = re.compile(r"[A-Za-z0-9_-]*")
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
        if not _URLSAFE.fullmatch(body):
            raise RecordError("record text is not base64url (unpadded, URL-safe alphabet)")
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
    """A server's long-term identity and its ephemeral boxing keys, looked up by key id.

    Keys rotate (DESIGN §6, Zero protocol's in-band rotation): at any moment the server holds
    the *previous* key (still accepted until it expires, so clients with an older record are
    served and handed the current record in-band), the *current* one (in the published
    record) and the *next* one (made in advance, so it can be published ahead). Expired
    private keys are erased by ``prune``.
    """

    def __init__(self, identity: SigningKeyPair, name: str = "") -> None:
        self.identity = identity
        self.name = name
        self._ephemeral: dict[bytes, EphemeralKey] = {}
        self.current: EphemeralKey | None = None
        self.previous: EphemeralKey | None = None
        self.next: EphemeralKey | None = None
        #: Where the server is reachable, once published: records name this address.
        self.address: tuple[str, int] | None = None
        self._record: ServerRecord | None = None

    @classmethod
    def generate(
        cls, random: RandomSource, *, name: str = "", now_unix: float, lifetime: int = 3600
    ) -> ServerKeys:
        keys = cls(SigningKeyPair.generate(random), name)
        keys.add_ephemeral(
            BoxKeyPair.generate(random),
            math.ceil(now_unix + lifetime),
            created=now_unix,
            exclusive=True,
        )
        return keys

    def add_ephemeral(
        self, keypair: BoxKeyPair, expires: int, *, created: float = 0.0, exclusive: bool = False
    ) -> EphemeralKey:
        """Install ``keypair`` as the current key (the old current one becomes previous)."""
        key = EphemeralKey(keypair, expires, created, exclusive)
        self._ephemeral[key.key_id] = key
        if self.current is not None:
            self.previous = self.current
        self.current = key
        self._record = None
        return key

    def rotate(
        self, random: RandomSource, now_unix: float, *, interval: float, grace: float = 60.0
    ) -> EphemeralKey:
        """Previous <- current <- next <- a fresh key; call every ``interval`` seconds.

        A key is made one interval before it becomes current, is current for one interval,
        then previous (still accepted) for ``grace`` more seconds: its record's expiry.
        Returns the new current key; erases expired ones."""
        upcoming = self.next
        fresh = EphemeralKey(
            BoxKeyPair.generate(random), math.ceil(now_unix + 2 * interval + grace), now_unix, True
        )
        self._ephemeral[fresh.key_id] = fresh
        self.next = fresh
        if upcoming is None:
            upcoming = EphemeralKey(
                BoxKeyPair.generate(random), math.ceil(now_unix + interval + grace), now_unix, True
            )
            self._ephemeral[upcoming.key_id] = upcoming
        self.previous, self.current = self.current, upcoming
        self._record = None
        self.prune(now_unix)
        return upcoming

    def prune(self, now_unix: float) -> None:
        """Erase every private key past its expiry (forward secrecy)."""
        for kid, key in list(self._ephemeral.items()):
            if now_unix >= key.expires and key is not self.current:
                del self._ephemeral[kid]
                if key is self.previous:
                    self.previous = None

    def remove_ephemeral(self, kid: bytes) -> None:
        self._ephemeral.pop(kid, None)

    @property
    def key_ids(self) -> list[bytes]:
        return list(self._ephemeral)

    def lookup(self, kid: bytes, now_unix: float) -> EphemeralKey | None:
        """The ephemeral key a client's first packet names, if we still hold it and it is valid."""
        key = self._ephemeral.get(bytes(kid))
        if key is None or now_unix >= key.expires:
            return None
        return key

    def publish(self, host: str, port: int) -> ServerRecord:
        """Name the address records carry; returns the current record."""
        self.address = (host, port)
        self._record = None
        return self.current_record()

    def current_record(self) -> ServerRecord:
        """The signed record of the current key at the published address (cached)."""
        if self.address is None:
            raise ValueError("the server has not published an address yet")
        if self._record is None:
            self._record = self.record(*self.address)
        return self._record

    def record(self, host: str, port: int) -> ServerRecord:
        """The signed record for the current ephemeral key at ``host``:``port``."""
        if self.current is None:
            raise ValueError("no ephemeral key")
        unsigned = ServerRecord(
            self.name,
            host,
            port,
            self.identity.public,
            self.current.keypair.public,
            self.current.expires,
        )
        return ServerRecord(
            unsigned.name,
            host,
            port,
            unsigned.identity,
            unsigned.ephemeral,
            unsigned.expires,
            unsigned.version,
            self.identity.sign(unsigned.signed_part()),
        )
