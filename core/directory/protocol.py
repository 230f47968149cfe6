"""The directory protocol, sans I/O: requests and answers as bytes, the service's logic over a
store, and the client's checks and cache. The asyncio runtime (``minimalt.aio.directory``) and
the in-memory simulations drive the same functions.

One request per connection to service ``minimalt.directory``: the client writes one msgpack map
and ends its side; the directory answers one msgpack map and ends its side. Version 1::

    request   {"v": 1, "op": "lookup",   "name": str}
              {"v": 1, "op": "register", "record": bin}     (connection opened as the
                                                             record's identity: createAuth)
    answer    {"v": 1, "ok": true, "record": bin}            (lookup)
              {"v": 1, "ok": true, "status": "stored" | "unchanged"}   (register)
              {"v": 1, "ok": false, "error": code, "message": str}

Both requests are safe to execute twice (a lookup reads; a registration of the same record is a
no-op and an older one is refused), so clients send them retry-safe, in the 0-RTT first flight.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import msgpack

from ..proto.records import RecordError, ServerRecord
from .errors import DirectoryError, NameNotFound, RegistrationRefused
from .store import PutResult, Store

SERVICE = "minimalt.directory"
VERSION = 1
#: Largest request or answer, in bytes (a record is at most ~650).
MAX_MESSAGE = 4096

_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9._-]{0,252})")


def normalize_name(name: str) -> str:
    """The form names are stored and compared in: lower case. ``ValueError`` unless the name is
    1 to 253 characters of ``a-z 0-9 . _ -`` (any case), not starting with ``.`` or ``-``.
    The narrow alphabet keeps look-alike names (Unicode, spaces) from being registered."""
    if not isinstance(name, str):
        raise ValueError(f"a name is a string, not {type(name).__name__}")
    folded = name.lower()
    if not _NAME.fullmatch(folded):
        raise ValueError(
            f"{name[:60]!r} is not a valid name (1-253 of a-z 0-9 . _ -, not starting with . or -)"
        )
    return folded


# --- messages --------------------------------------------------------------------------------


def _pack(message: dict[str, Any]) -> bytes:
    return msgpack.packb({"v": VERSION, **message}, use_bin_type=True)


def _unpack(data: bytes, what: str) -> dict[str, Any]:
    if len(data) > MAX_MESSAGE:
        raise DirectoryError(f"{what} is larger than {MAX_MESSAGE} bytes", "bad_request")
    try:
        message = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise DirectoryError(f"{what} is not msgpack: {exc}", "bad_request") from None
    if not isinstance(message, dict):
        raise DirectoryError(f"{what} is not a msgpack map", "bad_request")
    if message.get("v") != VERSION:
        raise DirectoryError(
            f"{what} has directory protocol version {message.get('v')!r}, not {VERSION}",
            "bad_request",
        )
    return message


def lookup_request(name: str) -> bytes:
    return _pack({"op": "lookup", "name": normalize_name(name)})


def register_request(record: ServerRecord) -> bytes:
    return _pack({"op": "register", "record": record.to_bytes()})


def _answer_error(code: str, message: str) -> bytes:
    return _pack({"ok": False, "error": code, "message": message})


def _parse_answer(data: bytes) -> dict[str, Any]:
    """An answer's map; raises the matching error if it says the request failed."""
    answer = _unpack(data, "directory answer")
    if answer.get("ok") is True:
        return answer
    code = answer.get("error")
    message = answer.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        raise DirectoryError("malformed directory answer (no error code)", "bad_answer")
    if code == "not_found":
        raise NameNotFound(str(answer.get("name", "")), message)
    if code in ("forbidden", "stale", "invalid", "unauthenticated"):
        raise RegistrationRefused(message, code)
    raise DirectoryError(message, code)


def parse_lookup_answer(data: bytes, name: str, now_unix: float) -> ServerRecord:
    """The record a lookup of ``name`` returned, checked: well formed, signed by the identity it
    names, not expired at ``now_unix``, and for ``name``. ``NameNotFound`` or ``DirectoryError``
    for a refusal; ``RecordError`` for a record that must not be used (forged, expired, for
    another name): a directory cannot make a client use a record its server did not sign."""
    wanted = normalize_name(name)
    try:
        answer = _parse_answer(data)
    except NameNotFound as exc:
        raise NameNotFound(name, str(exc)) from None
    raw = answer.get("record")
    if not isinstance(raw, bytes):
        raise DirectoryError("malformed directory answer (no record)", "bad_answer")
    record = ServerRecord.from_bytes(raw)
    record.verify(now_unix)
    try:
        record_name = normalize_name(record.name)
    except ValueError:
        record_name = ""
    if record_name != wanted:
        raise RecordError(f"the directory answered {name!r} with a record for {record.name!r}")
    return record


def parse_register_answer(data: bytes) -> str:
    """``"stored"`` or ``"unchanged"``; ``RegistrationRefused`` (with its ``code``) if refused."""
    status = _parse_answer(data).get("status")
    if status not in ("stored", "unchanged"):
        raise DirectoryError("malformed directory answer (no status)", "bad_answer")
    return str(status)


# --- the service -----------------------------------------------------------------------------


class DirectoryService:
    """The directory's logic: ``handle(request, user, now_unix)`` -> answer bytes.

    ``user`` is the Ed25519 key the connection was opened as (createAuth), or None. A name is
    bound to the first identity that registers it, or to the identity ``bindings`` gives it
    (the operator's word wins: a binding replaces whoever held the name). ``counters`` counts
    requests and outcomes, for monitoring."""

    def __init__(self, store: Store, *, bindings: Mapping[str, bytes] | None = None) -> None:
        self.store = store
        self.counters: dict[str, int] = {}
        for name, identity in (bindings or {}).items():
            if len(identity) != 32:
                raise ValueError(f"binding for {name!r}: an identity key is 32 bytes")
            store.bind(normalize_name(name), bytes(identity))

    def handle(self, request: bytes, user: bytes | None, now_unix: float) -> bytes:
        """Answer one request. Never raises for bad input: every failure is an error answer."""
        try:
            message = _unpack(request, "request")
            op = message.get("op")
            if op == "lookup":
                name = message.get("name")
                if not isinstance(name, str):
                    raise DirectoryError("lookup needs a name", "bad_request")
                record = self.lookup(name, now_unix)
                self._count("lookup")
                return _pack({"ok": True, "record": record})
            if op == "register":
                raw = message.get("record")
                if not isinstance(raw, bytes):
                    raise DirectoryError("register needs a record (bin)", "bad_request")
                status = self.register(raw, user, now_unix)
                self._count("register_" + status)
                return _pack({"ok": True, "status": status})
            raise DirectoryError(f"unknown operation {op!r}", "bad_request")
        except DirectoryError as exc:
            self._count("error_" + exc.code)
            return _answer_error(exc.code, str(exc))

    def lookup(self, name: str, now_unix: float) -> bytes:
        """The signed record bytes for ``name``; ``NameNotFound`` if none is current."""
        try:
            key = normalize_name(name)
        except ValueError as exc:
            raise NameNotFound(name, str(exc)) from None
        entry = self.store.get(key)
        if entry is None or entry.record is None:
            raise NameNotFound(name)
        if now_unix >= entry.expires:
            raise NameNotFound(
                name, f"the record of {name!r} has expired and its server has not renewed it"
            )
        return entry.record

    def register(self, raw: bytes, user: bytes | None, now_unix: float) -> str:
        """Store a record (see the class docstring). Returns ``"stored"`` or ``"unchanged"``;
        ``RegistrationRefused`` with a code and a reason otherwise."""
        try:
            record = ServerRecord.from_bytes(raw)
            record.verify(now_unix)
        except RecordError as exc:
            raise RegistrationRefused(f"unusable record: {exc}", "invalid") from None
        try:
            name = normalize_name(record.name)
        except ValueError as exc:
            raise RegistrationRefused(str(exc), "invalid") from None
        if user != record.identity:
            raise RegistrationRefused(
                "register on a connection opened as the record's identity (createAuth)",
                "unauthenticated",
            )
        result = self.store.put(name, bytes(raw), record.identity, record.expires)
        if result is PutResult.FORBIDDEN:
            raise RegistrationRefused(f"{name!r} belongs to another identity", "forbidden")
        if result is PutResult.STALE:
            raise RegistrationRefused(f"the directory holds a newer record for {name!r}", "stale")
        return result.value

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1


# --- the client's cache ----------------------------------------------------------------------


class RecordCache:
    """Records by name, each used only while it has not expired; least recently used first out.

    Holds only records that passed ``parse_lookup_answer`` (signature, expiry, name)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._records: OrderedDict[str, ServerRecord] = OrderedDict()

    def get(self, name: str, now_unix: float) -> ServerRecord | None:
        key = normalize_name(name)
        record = self._records.get(key)
        if record is None:
            return None
        if now_unix >= record.expires:
            del self._records[key]
            return None
        self._records.move_to_end(key)
        return record

    def put(self, name: str, record: ServerRecord) -> None:
        key = normalize_name(name)
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self.max_entries:
            self._records.popitem(last=False)

    def discard(self, name: str) -> None:
        self._records.pop(normalize_name(name), None)

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._records
