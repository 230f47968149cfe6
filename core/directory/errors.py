"""The directory's exceptions: one base (a ``MinimaLTError``), a class per case callers handle."""

from __future__ import annotations

from ..proto.errors import MinimaLTError


class DirectoryError(MinimaLTError):
    """A directory request failed. ``code`` is the directory's error code (see
    ``docs/directory.md``), or ``"client"`` for a failure on this side."""

    def __init__(self, message: str, code: str = "client") -> None:
        super().__init__(message)
        self.code = code


class NameNotFound(DirectoryError, LookupError):
    """The directory has no current record for ``name`` (never registered, or its record
    expired without the server registering a newer one)."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"no server named {name!r} in the directory", "not_found")
        self.name = name


class RegistrationRefused(DirectoryError):
    """The directory refused a registration: ``code`` says why (``forbidden``: the name belongs
    to another identity; ``stale``: the directory holds a newer record; ``invalid``: the record
    is malformed, badly signed or expired; ``unauthenticated``: the connection was not opened
    as the record's identity)."""


class DirectoryUnavailable(DirectoryError, ConnectionError):
    """The directory could not be reached or broke off the exchange."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unavailable")


class DirectoryConfigError(DirectoryError, ValueError):
    """No directory is configured, or its configuration (file or environment) is malformed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "config")
