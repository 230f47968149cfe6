"""The exceptions of the protocol core: one base, split into local misuse and remote errors."""

from __future__ import annotations


class MinimaLTError(Exception):
    """Base of every error minimalt raises."""


class LocalProtocolError(MinimaLTError):
    """The application used the API wrongly (write after end, unknown connection, ...)."""


class RemoteProtocolError(MinimaLTError):
    """The peer broke the protocol. Raised inside the core and turned into a drop or a close;
    it never escapes ``Endpoint.receive_datagram``."""

    def __init__(self, message: str, code: int = 0x1) -> None:
        super().__init__(message)
        self.code = code


class FlowControlError(RemoteProtocolError):
    """The peer sent past a window we advertised."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=0x3)


class FinalSizeError(RemoteProtocolError):
    """The peer changed a connection's final size, or sent data past it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=0x6)


class FrameEncodingError(RemoteProtocolError):
    """A frame inside an authenticated packet could not be parsed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=0x7)


class ConnectionRefused(MinimaLTError):
    """The server refused a connection (unknown service, limit reached, ...)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class TunnelClosedError(MinimaLTError):
    """The tunnel closed (idle timeout, peer close, too many losses) while work was pending."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code
