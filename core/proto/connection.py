"""One connection inside a tunnel: an ordered byte stream each way with its flow-control window."""

from __future__ import annotations

from typing import Any

from .streams import RecvBuffer, SendBuffer


class Connection:
    """State of one connection (the tunnel owns and drives it).

    ``send_limit`` is the highest offset the peer lets us send (its window); ``recv_limit`` the
    highest offset we let the peer send; ``consumed`` how many received bytes the application
    has taken (``Tunnel.consume``), which is what moves ``recv_limit`` forward.
    """

    __slots__ = (
        "cid",
        "service",
        "retry_safe",
        "local",
        "send",
        "recv",
        "send_limit",
        "recv_limit",
        "recv_window",
        "consumed",
        "create_pending",
        "opened",
        "reset",
        "window_update_pending",
        "fin_delivered",
        "closed",
        "early_limit",
        "user",
        "auth_signature",
        "user_key",
        "accepted",
        "queued",
    )

    def __init__(
        self,
        cid: int,
        service: str,
        *,
        local: bool,
        retry_safe: bool,
        send_limit: int,
        recv_limit: int,
        recv_window: int,
    ) -> None:
        self.cid = cid
        self.service = service
        self.retry_safe = retry_safe
        self.local = local  # opened by this side
        self.send = SendBuffer()
        self.recv = RecvBuffer()
        self.send_limit = send_limit
        self.recv_limit = recv_limit
        self.recv_window = recv_window
        self.consumed = 0
        self.create_pending = local  # our Create frame is still to be sent
        self.opened = local  # a peer-opened connection opens when its Create is accepted
        self.reset = False
        self.window_update_pending = False
        self.fin_delivered = False
        self.closed = False
        #: Bytes below this offset were written retry-safe before the server answered: they
        #: may travel in the 0-RTT first flight. Everything after waits for the answer.
        self.early_limit = 0
        #: The authenticated user's public key (createAuth), and on the client the signature
        #: its Create carries.
        self.user: bytes | None = None
        self.auth_signature = b""
        self.user_key: Any = None  # client: the SigningKeyPair that signs the Create
        self.accepted = False  # ours: the peer acknowledged our Create without refusing it
        self.queued = False  # in the tunnel's queue of connections that may have data to send

    def has_data_to_send(self) -> bool:
        return self.send.has_data_to_send(self.send_limit)

    @property
    def done(self) -> bool:
        """Both directions finished: our FIN and data acknowledged, the peer's FIN delivered."""
        return self.send.all_acked and self.fin_delivered

    def __repr__(self) -> str:
        return f"<Connection {self.cid} {self.service!r}>"
