"""Opt-in qlog-style traces: a trace sink writing JSON-SEQ records (RFC 7464).

Pass an instance as ``EndpointConfig.trace``. Each record is ``{"time": ms, "name": ...,
"data": {...}}`` preceded by the record separator 0x1E, as qlog's JSON-SEQ serialisation; event
names follow QUIC's qlog schema where one fits (``transport:packet_sent``,
``recovery:packet_lost``, ...) and use ``minimalt:`` otherwise.
"""

from __future__ import annotations

import json
from typing import IO, Any

RECORD_SEPARATOR = "\x1e"


class QlogWriter:
    """Writes trace events to a text stream; the first record is the qlog header."""

    def __init__(
        self, stream: IO[str], *, title: str = "minimalt", vantage_point: str = ""
    ) -> None:
        self._stream = stream
        self._start: float | None = None
        header = {
            "qlog_version": "0.4",
            "qlog_format": "JSON-SEQ",
            "title": title,
            "trace": {"vantage_point": {"type": vantage_point or "unknown"}},
        }
        stream.write(RECORD_SEPARATOR + json.dumps(header) + "\n")

    def __call__(self, now: float, name: str, data: dict[str, Any]) -> None:
        if self._start is None:
            self._start = now
        record = {"time": round((now - self._start) * 1000, 3), "name": name, "data": data}
        self._stream.write(RECORD_SEPARATOR + json.dumps(record, default=str) + "\n")


def read_qlog(text: str) -> list[dict[str, Any]]:
    """The records of a JSON-SEQ trace (header first)."""
    return [json.loads(chunk) for chunk in text.split(RECORD_SEPARATOR) if chunk.strip()]
