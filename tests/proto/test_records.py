"""Server records: binary and text forms, signature, expiry and identity checks, malformed input
(docs/protocol.md §13)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimalt.proto.constants import PROTOCOL_VERSION
from minimalt.proto.crypto import BoxKeyPair, SigningKeyPair, key_id
from minimalt.proto.records import (
    RECORD_MAGIC,
    TEXT_PREFIX,
    RecordError,
    ServerKeys,
    ServerRecord,
)

NOW = 1_700_000_000
IDENTITY = SigningKeyPair(bytes(range(0x40, 0x60)))
EPHEMERAL = BoxKeyPair(bytes(range(0x20, 0x40)))


def _keys(name: str = "server.example", expires: int = NOW + 3600) -> ServerKeys:
    keys = ServerKeys(IDENTITY, name)
    keys.add_ephemeral(EPHEMERAL, expires)
    return keys


def _record(**kw) -> ServerRecord:
    return _keys(**kw).record("192.0.2.1", 4433)


def _resign(record: ServerRecord, signer: SigningKeyPair = IDENTITY, **changes) -> ServerRecord:
    fields = dict(
        name=record.name,
        host=record.host,
        port=record.port,
        identity=record.identity,
        ephemeral=record.ephemeral,
        expires=record.expires,
        version=record.version,
    )
    fields.update(changes)
    unsigned = ServerRecord(**fields)
    return ServerRecord(**fields, signature=signer.sign(unsigned.signed_part()))


# --- formats -----------------------------------------------------------------------------------


def test_binary_layout() -> None:
    record = _record()
    raw = record.to_bytes()
    name, host = b"server.example", b"192.0.2.1"
    expected = (
        b"MLTR"
        + bytes((PROTOCOL_VERSION, len(name)))
        + name
        + bytes((len(host),))
        + host
        + (4433).to_bytes(2, "big")
        + IDENTITY.public
        + EPHEMERAL.public
        + (NOW + 3600).to_bytes(8, "big")
    )
    assert raw == expected + record.signature
    assert len(record.signature) == 64
    assert record.signed_part() == expected


def test_text_form_is_prefix_and_unpadded_urlsafe_base64() -> None:
    record = _record()
    text = record.to_text()
    assert text.startswith(TEXT_PREFIX)
    body = text[len(TEXT_PREFIX) :]
    assert "=" not in body and "+" not in body and "/" not in body
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) == record.to_bytes()


def test_record_fields_and_key_id() -> None:
    record = _record()
    assert record.identity == IDENTITY.public
    assert record.ephemeral == EPHEMERAL.public
    assert record.key_id == key_id(EPHEMERAL.public)
    assert record.address == ("192.0.2.1", 4433)


RECORDS = st.builds(
    ServerRecord,
    name=st.text(max_size=80).filter(lambda s: len(s.encode()) <= 255),
    host=st.text(max_size=80).filter(lambda s: len(s.encode()) <= 255),
    port=st.integers(0, 0xFFFF),
    identity=st.binary(min_size=32, max_size=32),
    ephemeral=st.binary(min_size=32, max_size=32),
    expires=st.integers(0, 2**64 - 1),
    version=st.integers(0, 255),
    signature=st.binary(min_size=64, max_size=64),
)


@given(RECORDS)
def test_binary_round_trip(record: ServerRecord) -> None:
    assert ServerRecord.from_bytes(record.to_bytes()) == record


@given(RECORDS)
def test_text_round_trip(record: ServerRecord) -> None:
    assert ServerRecord.from_text(record.to_text()) == record
    assert ServerRecord.from_text("  " + record.to_text() + "\n") == record


def test_names_up_to_255_bytes() -> None:
    record = _resign(_record(), name="n" * 255, host="h" * 255)
    assert ServerRecord.from_bytes(record.to_bytes()) == record
    record.verify(NOW)
    with pytest.raises(RecordError, match="at most 255 bytes"):
        ServerRecord("n" * 256, "h", 1, bytes(32), bytes(32), 0).to_bytes()
    with pytest.raises(RecordError, match="port out of range"):
        ServerRecord("n", "h", 65536, bytes(32), bytes(32), 0).to_bytes()


# --- verification ------------------------------------------------------------------------------


def test_a_signed_record_verifies_until_it_expires() -> None:
    record = _record()
    record.verify(NOW)
    record.verify(NOW + 3599.999, identity=IDENTITY.public)
    with pytest.raises(RecordError, match="expired"):
        record.verify(NOW + 3600)
    with pytest.raises(RecordError, match="expired"):
        record.verify(NOW + 10**6)


def test_parsed_forms_verify() -> None:
    record = _record()
    ServerRecord.from_bytes(record.to_bytes()).verify(NOW)
    ServerRecord.from_text(record.to_text()).verify(NOW)


def test_every_flipped_byte_fails() -> None:
    raw = _record().to_bytes()
    for i in range(len(raw)):
        for mask in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[i] ^= mask
            with pytest.raises(RecordError):
                ServerRecord.from_bytes(bytes(tampered)).verify(NOW)


def test_wrong_identity_fails() -> None:
    other = SigningKeyPair(bytes(32))
    with pytest.raises(RecordError, match="another identity"):
        _record().verify(NOW, identity=other.public)
    # Signed by someone else than the identity it names.
    forged = _resign(_record(), signer=other)
    with pytest.raises(RecordError, match="signature does not verify"):
        forged.verify(NOW)
    # Names the other identity and is signed by it: valid, but not the server we expect.
    swapped = _resign(_record(), signer=other, identity=other.public)
    swapped.verify(NOW)
    with pytest.raises(RecordError, match="another identity"):
        swapped.verify(NOW, identity=IDENTITY.public)


def test_other_protocol_version_fails_even_if_signed() -> None:
    record = _resign(_record(), version=PROTOCOL_VERSION + 1)
    with pytest.raises(RecordError, match="unsupported protocol version"):
        record.verify(NOW)


def test_unsigned_record_fails() -> None:
    record = ServerRecord("s", "h", 1, IDENTITY.public, EPHEMERAL.public, NOW + 10)
    with pytest.raises(RecordError, match="signature"):
        record.verify(NOW)


def test_server_keys_lookup_by_key_id() -> None:
    keys = _keys()
    kid = key_id(EPHEMERAL.public)
    assert keys.lookup(kid, NOW).keypair is EPHEMERAL
    assert keys.lookup(kid, NOW + 3600) is None  # expired
    assert keys.lookup(b"\x00\x00\x00\x00", NOW) is None
    keys.remove_ephemeral(kid)
    assert keys.lookup(kid, NOW) is None


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "starts with 'mlt1:'"),
        ("MLTR", "starts with 'mlt1:'"),
        ("mlt2:TUxUUg", "starts with 'mlt1:'"),
        ("mlt1:", "bad magic"),
        ("mlt1:QUJDRA", "bad magic"),  # "ABCD"
        ("mlt1:A", "not base64"),
        ("mlt1:TUxUUg\u00e9", "not base64"),
        ("mlt1:TUxUUgEP", "malformed record"),  # magic, version, then a name cut short
    ],
)
def test_malformed_text_gives_a_clear_record_error(text: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        ServerRecord.from_text(text)


def test_every_truncation_of_a_record_is_a_record_error() -> None:
    raw = _record().to_bytes()
    for cut in range(len(raw)):
        with pytest.raises(RecordError):
            ServerRecord.from_bytes(raw[:cut])
    with pytest.raises(RecordError, match="wrong length"):
        ServerRecord.from_bytes(raw + b"\x00")


def test_invalid_utf8_name_is_a_record_error() -> None:
    raw = RECORD_MAGIC + bytes((PROTOCOL_VERSION, 2)) + b"\xff\xfe" + bytes(200)
    with pytest.raises(RecordError, match="malformed record"):
        ServerRecord.from_bytes(raw)


@given(st.binary(max_size=300))
def test_random_bytes_raise_nothing_but_record_error(data: bytes) -> None:
    try:
        ServerRecord.from_bytes(data).verify(NOW)
    except RecordError:
        pass


@given(st.text(max_size=300))
def test_random_text_raises_nothing_but_record_error(text: str) -> None:
    for candidate in (text, TEXT_PREFIX + text):
        try:
            ServerRecord.from_text(candidate).verify(NOW)
        except RecordError:
            pass


def test_text_with_characters_outside_the_alphabet_is_rejected() -> None:
    text = _record().to_text()
    corrupted = text[:20] + "!" + text[20:]
    with pytest.raises(RecordError):
        ServerRecord.from_text(corrupted)


def test_text_with_the_standard_base64_alphabet_is_rejected() -> None:
    text = _record().to_text()
    assert "-" in text or "_" in text, "pick another record: this one has no URL-safe characters"
    standard = text.replace("-", "+").replace("_", "/")
    with pytest.raises(RecordError):
        ServerRecord.from_text(standard)
