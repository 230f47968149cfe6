"""How a client finds its directory: an address and the directory's long-term identity key.

From the environment (wins when set)::

    MINIMALT_DIRECTORY=host:port            ([v6addr]:port for IPv6)
    MINIMALT_DIRECTORY_KEY=<key>            64 hex digits, or base64url/base64 of 32 bytes

or from the client configuration file, ``$MINIMALT_CONFIG`` or
``$XDG_CONFIG_HOME/minimalt/client.json`` (``~/.config/minimalt/client.json``)::

    {"directory": {"address": "host:port", "key": "<key>"}}

The key is what makes the first contact safe: the directory's signed record (and so every
lookup answer) is only accepted from the holder of that key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import DirectoryConfigError

ENV_ADDRESS = "MINIMALT_DIRECTORY"
ENV_KEY = "MINIMALT_DIRECTORY_KEY"
ENV_CONFIG = "MINIMALT_CONFIG"
CLIENT_FILE = "client.json"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/minimalt``, or ``~/.config/minimalt``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "minimalt"


def client_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The client configuration file: ``$MINIMALT_CONFIG`` or ``config_dir()/client.json``."""
    env = os.environ if env is None else env
    explicit = env.get(ENV_CONFIG)
    return Path(os.path.expanduser(explicit)) if explicit else config_dir(env) / CLIENT_FILE


def parse_key(text: str) -> bytes:
    """A 32-byte Ed25519 public key from 64 hex digits or (url-safe or standard) base64."""
    text = text.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise DirectoryConfigError(
            f"directory key {text[:20]!r}... is not 64 hex digits or the base64 of 32 bytes"
            if len(text) > 20
            else f"directory key {text!r} is not 64 hex digits or the base64 of 32 bytes"
        )
    return raw


def parse_address(text: str) -> tuple[str, int]:
    """``(host, port)`` from ``host:port`` or ``[v6addr]:port``."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DirectoryConfigError(f"directory address {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class DirectoryConfig:
    """Where the directory is and the long-term key it must prove it holds."""

    host: str
    port: int
    identity: bytes

    def __post_init__(self) -> None:
        if len(self.identity) != 32:
            raise DirectoryConfigError("a directory key is 32 bytes")

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def to_env(self) -> dict[str, str]:
        """The environment variables that configure a client for this directory."""
        return {ENV_ADDRESS: format_address(self.host, self.port), ENV_KEY: self.identity.hex()}

    def to_json(self) -> str:
        address = format_address(self.host, self.port)
        return json.dumps({"directory": {"address": address, "key": self.identity.hex()}})

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the client configuration file (``client_config_path()`` by default)."""
        target = Path(path) if path is not None else client_config_path()
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json() + "\n")
        os.replace(tmp, target)
        return target


def load_directory_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> DirectoryConfig | None:
    """The configured directory, or None if neither the environment nor the file names one.

    ``DirectoryConfigError`` if what is configured is malformed (one variable without the
    other, a bad key or address, a file that is not the expected JSON)."""
    env = os.environ if env is None else env
    address, key = env.get(ENV_ADDRESS), env.get(ENV_KEY)
    if address or key:
        if not (address and key):
            missing = ENV_KEY if address else ENV_ADDRESS
            raise DirectoryConfigError(
                f"{ENV_ADDRESS} and {ENV_KEY} go together: {missing} is not set"
            )
        host, port = parse_address(address)
        return DirectoryConfig(host, port, parse_key(key))
    file = Path(path) if path is not None else client_config_path(env)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path is not None:
            raise DirectoryConfigError(f"client configuration {str(file)!r} not found") from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DirectoryConfigError(f"cannot read {str(file)!r}: {exc}") from None
    try:
        data = json.loads(text)
        section = data["directory"]
        host, port = parse_address(section["address"])
        return DirectoryConfig(host, port, parse_key(section["key"]))
    except DirectoryConfigError as exc:
        raise DirectoryConfigError(f"{file}: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DirectoryConfigError(
            f'{file}: expected {{"directory": {{"address": "HOST:PORT", "key": ...}}}}'
            f" ({type(exc).__name__}: {exc})"
        ) from None


NOT_CONFIGURED = (
    f"no directory configured: set {ENV_ADDRESS}=HOST:PORT and {ENV_KEY}=<key>, or write "
    f'{{"directory": {{"address": ..., "key": ...}}}} to ~/.config/minimalt/{CLIENT_FILE}'
)
