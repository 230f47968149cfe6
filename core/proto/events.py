"""Events the core reports to its driver, pulled with ``Endpoint.next_event()``.

Each is a frozen dataclass named as a fact. ``tunnel`` is the ``Tunnel`` object the event is
about (its TID may change on rekey; the object does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import ServerRecord
    from .tunnel import Tunnel

Address = Any  # whatever the driver passes as a datagram's address: (host, port) for UDP


@dataclass(frozen=True, slots=True)
class TunnelEstablished:
    """The first authenticated packet from the peer arrived (client: the server answered)."""

    tunnel: Tunnel
    peer: Address


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """The peer opened connection ``cid`` to ``service`` and this endpoint serves it."""

    tunnel: Tunnel
    cid: int
    service: str
    retry_safe: bool
    #: The Ed25519 public key the client proved it holds for this connection (createAuth),
    #: or None for an anonymous connection.
    user: bytes | None = None


@dataclass(frozen=True, slots=True)
class ConnectionAccepted:
    """The peer acknowledged the packet that opened our connection ``cid`` and did not refuse
    it in the same answer (what ``net``'s ``'connect'`` means). At most once per connection.
    A peer refuses in the packet that acknowledges the Create unless that packet is full of
    other control frames; only then can a ConnectionRefused still follow."""

    tunnel: Tunnel
    cid: int


@dataclass(frozen=True, slots=True)
class ConnectionRefused:
    """The peer refused connection ``cid`` (unknown service, limit, ...)."""

    tunnel: Tunnel
    cid: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class DataReceived:
    """In-order bytes of connection ``cid``. ``end_stream``: the peer half-closed after them.

    The driver calls ``tunnel.consume(cid, len(data))`` once the application has taken the
    bytes; until then they count against the flow-control window (this is backpressure)."""

    tunnel: Tunnel
    cid: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True, slots=True)
class ConnectionReset:
    """The peer aborted connection ``cid``; nothing more will be delivered or accepted."""

    tunnel: Tunnel
    cid: int
    code: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Both directions of ``cid`` ended cleanly and every byte sent was acknowledged."""

    tunnel: Tunnel
    cid: int


@dataclass(frozen=True, slots=True)
class DatagramReceived:
    """An unreliable message on connection ``cid``."""

    tunnel: Tunnel
    cid: int
    data: bytes


@dataclass(frozen=True, slots=True)
class EarlyDataRejected:
    """The server did not accept the first flight's data; retry-safe data is being resent."""

    tunnel: Tunnel


@dataclass(frozen=True, slots=True)
class TunnelMigrated:
    """The peer answered a path challenge from its new address; the tunnel follows it
    (server side; congestion state restarts on the new path)."""

    tunnel: Tunnel
    old: Address
    new: Address


@dataclass(frozen=True, slots=True)
class TunnelRekeyed:
    """The tunnel moved to a new TID and new keys (the old keys are gone)."""

    tunnel: Tunnel
    old_tid: int
    new_tid: int


@dataclass(frozen=True, slots=True)
class RecordUpdated:
    """The server handed us its newer signed record (key rotation); later tunnels use it."""

    tunnel: Tunnel
    record: ServerRecord


@dataclass(frozen=True, slots=True)
class TunnelClosed:
    """The tunnel is gone: closed by either side, idle timeout, or a protocol error."""

    tunnel: Tunnel
    code: int
    reason: str
    by_peer: bool


Event = (
    TunnelEstablished
    | ConnectionOpened
    | ConnectionAccepted
    | ConnectionRefused
    | DataReceived
    | ConnectionReset
    | ConnectionClosed
    | DatagramReceived
    | EarlyDataRejected
    | TunnelMigrated
    | TunnelRekeyed
    | RecordUpdated
    | TunnelClosed
)
