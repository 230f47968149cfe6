"""A server's long-term identity (its Ed25519 signing key) and the file that keeps it.

File format (UTF-8 JSON, written with mode 0600 because it holds the secret seed)::

    {"type": "minimalt-identity", "version": 1, "name": "...",
     "public": "<base64 Ed25519 public key>", "seed": "<base64 Ed25519 seed>"}

Ephemeral boxing keys are never stored: a server makes fresh ones when it starts (and when it
rotates), so a stolen identity file does not decrypt recorded traffic (forward secrecy).
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

from ..proto.crypto import BoxKeyPair, RandomSource, SigningKeyPair
from ..proto.records import ServerKeys

FILE_TYPE = "minimalt-identity"
FILE_VERSION = 1


class IdentityError(ValueError):
    """An identity file is missing, unreadable or malformed."""


class Identity:
    """A long-term Ed25519 identity with a human-readable ``name`` (put in records)."""

    __slots__ = ("name", "signing")

    def __init__(self, signing: SigningKeyPair, name: str = "") -> None:
        self.signing = signing
        self.name = name

    @classmethod
    def generate(
        cls,
        name: str = "",
        *,
        random: RandomSource = os.urandom,  # type: ignore[assignment]  # nominal type
    ) -> Identity:
        return cls(SigningKeyPair.generate(random), name)

    @property
    def public(self) -> bytes:
        """The 32-byte Ed25519 public key clients may pin."""
        return self.signing.public

    @property
    def fingerprint(self) -> str:
        """The public key in hex, as the CLI prints it."""
        return self.public.hex()

    def server_keys(
        self,
        *,
        lifetime: int = 3600,
        random: RandomSource = os.urandom,  # type: ignore[assignment]  # nominal type
        now_unix: float | None = None,
    ) -> ServerKeys:
        """Fresh ``ServerKeys`` for this identity: one new ephemeral key, valid ``lifetime`` s."""
        keys = ServerKeys(self.signing, self.name)
        now = time.time() if now_unix is None else now_unix
        # Made here and never written anywhere: no other process can have accepted first
        # packets boxed to it, so its early data is safe from the first second (``exclusive``).
        keys.add_ephemeral(
            BoxKeyPair.generate(random), int(now) + lifetime, created=now, exclusive=True
        )
        return keys

    # --- files -------------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": FILE_TYPE,
                "version": FILE_VERSION,
                "name": self.name,
                "public": base64.b64encode(self.public).decode(),
                "seed": base64.b64encode(self.signing.seed).decode(),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Identity:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("type") != FILE_TYPE:
                raise IdentityError("not a minimalt identity file")
            if data.get("version") != FILE_VERSION:
                raise IdentityError(f"unsupported identity file version {data.get('version')!r}")
            seed = base64.b64decode(data["seed"], validate=True)
            name = data.get("name", "")
            if len(seed) != 32 or not isinstance(name, str):
                raise IdentityError("identity file has a malformed key")
            identity = cls(SigningKeyPair(seed), name)
            public = data.get("public")
            if public is not None and base64.b64decode(public) != identity.public:
                raise IdentityError("identity file's public key does not match its seed")
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, IdentityError):
                raise
            raise IdentityError(f"malformed identity file: {exc}") from exc
        return identity

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the identity to ``path`` with mode 0600. ``FileExistsError`` unless
        ``overwrite``; the file is never readable by others, not even for an instant."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        fd = os.open(path, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an existing file we overwrite may have had wider permissions
            os.write(fd, (self.to_json() + "\n").encode())
        finally:
            os.close(fd)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read an identity file; ``IdentityError`` with a one-line reason if that fails."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise IdentityError(
                f"identity file {str(path)!r} not found (create one with `minimalt keygen`)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise IdentityError(f"cannot read identity file {str(path)!r}: {exc}") from None
        try:
            return cls.from_json(text)
        except IdentityError as exc:
            raise IdentityError(f"{path}: {exc}") from None

    def __repr__(self) -> str:
        return f"<Identity {self.name!r} {self.fingerprint[:16]}...>"
