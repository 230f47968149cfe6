"""The directory's logic without I/O: who may register a name, which records are served, and
what a client accepts from an answer."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimalt.directory.errors import DirectoryError, NameNotFound, RegistrationRefused
from minimalt.directory.protocol import (
    MAX_MESSAGE,
    DirectoryService,
    RecordCache,
    lookup_request,
    normalize_name,
    parse_lookup_answer,
    parse_register_answer,
    register_request,
)
from minimalt.directory.store import MemoryStore
from minimalt.proto.crypto import SeededRandom
from minimalt.proto.records import RecordError, ServerKeys, ServerRecord

NOW = 1_700_000_000.0


def keys(name: str, seed: int, *, now: float = NOW, lifetime: int = 3600) -> ServerKeys:
    made = ServerKeys.generate(SeededRandom(seed), name=name, now_unix=now, lifetime=lifetime)
    made.publish("127.0.0.1", 4000 + seed)
    return made


def register(service: DirectoryService, k: ServerKeys, *, user: bytes | None = None, now=NOW):
    record = k.current_record()
    answer = service.handle(register_request(record), user or k.identity.public, now)
    return parse_register_answer(answer)


def lookup(service: DirectoryService, name: str, now: float = NOW) -> ServerRecord:
    return parse_lookup_answer(service.handle(lookup_request(name), None, now), name, now)


def test_a_registered_record_is_served_by_name_case_insensitively():
    service = DirectoryService(MemoryStore())
    alpha = keys("Alpha", 1)
    assert register(service, alpha) == "stored"
    assert register(service, alpha) == "unchanged"
    assert lookup(service, "alpha") == alpha.current_record()
    assert lookup(service, "ALPHA") == alpha.current_record()


def test_a_name_belongs_to_the_first_identity_that_registers_it():
    service = DirectoryService(MemoryStore())
    assert register(service, keys("alpha", 1)) == "stored"
    intruder = keys("alpha", 2)  # a validly signed record, by another key
    with pytest.raises(RegistrationRefused, match="another identity") as refused:
        register(service, intruder)
    assert refused.value.code == "forbidden"
    assert lookup(service, "alpha").identity != intruder.identity.public


def test_an_operator_binding_reserves_a_name_before_anyone_registers():
    owner, squatter = keys("reserved", 1), keys("reserved", 2)
    service = DirectoryService(MemoryStore(), bindings={"Reserved": owner.identity.public})
    with pytest.raises(NameNotFound):
        lookup(service, "reserved")  # bound, no record yet
    with pytest.raises(RegistrationRefused) as refused:
        register(service, squatter)
    assert refused.value.code == "forbidden"
    assert register(service, owner) == "stored"


def test_registration_must_come_from_the_records_identity():
    service = DirectoryService(MemoryStore())
    alpha, other = keys("alpha", 1), keys("other", 2)
    for user in (None, other.identity.public):
        answer = service.handle(register_request(alpha.current_record()), user, NOW)
        with pytest.raises(RegistrationRefused, match="createAuth") as refused:
            parse_register_answer(answer)
        assert refused.value.code == "unauthenticated"


def test_an_older_record_never_overwrites_a_newer_one():
    service = DirectoryService(MemoryStore())
    alpha = keys("alpha", 1, lifetime=600)
    old = alpha.current_record()
    alpha.rotate(SeededRandom(9), NOW + 300, interval=600, grace=60)
    new = alpha.current_record()
    assert new.expires > old.expires
    assert register(service, alpha) == "stored"
    answer = service.handle(register_request(old), alpha.identity.public, NOW + 300)
    with pytest.raises(RegistrationRefused, match="newer record") as refused:
        parse_register_answer(answer)
    assert refused.value.code == "stale"
    assert lookup(service, "alpha", NOW + 300) == new


@pytest.mark.parametrize("damage", ["signature", "identity", "expired", "garbage", "name"])
def test_unusable_records_are_refused_with_a_reason(damage):
    service = DirectoryService(MemoryStore())
    alpha = keys("alpha", 1)
    raw = bytearray(alpha.current_record().to_bytes())
    user = alpha.identity.public
    now = NOW
    if damage == "signature":
        raw[-1] ^= 1
    elif damage == "identity":  # claims another identity, keeps alpha's signature
        raw[-64 - 8 - 32 - 32] ^= 1
        user = bytes(raw[-64 - 8 - 32 - 32 : -64 - 8 - 32])
    elif damage == "expired":
        now = alpha.current_record().expires + 1
    elif damage == "garbage":
        raw = bytearray(b"MLTR\x01")
    elif damage == "name":
        bad = ServerKeys.generate(SeededRandom(5), name="no spaces allowed", now_unix=NOW)
        bad.publish("127.0.0.1", 1)
        raw, user = bytearray(bad.current_record().to_bytes()), bad.identity.public
    request = msgpack.packb({"v": 1, "op": "register", "record": bytes(raw)})
    with pytest.raises(RegistrationRefused) as refused:
        parse_register_answer(service.handle(request, user, now))
    assert refused.value.code == "invalid"
    assert service.store.names() == []


def test_unknown_and_expired_names_are_not_found():
    service = DirectoryService(MemoryStore())
    with pytest.raises(NameNotFound, match="no server named 'nobody'") as missing:
        lookup(service, "nobody")
    assert missing.value.name == "nobody" and isinstance(missing.value, LookupError)
    alpha = keys("alpha", 1)
    register(service, alpha)
    with pytest.raises(NameNotFound, match="expired"):
        lookup(service, "alpha", alpha.current_record().expires)


def test_a_client_never_accepts_a_forged_expired_or_misnamed_record():
    service = DirectoryService(MemoryStore())
    alpha, beta = keys("alpha", 1), keys("beta", 2)
    record = alpha.current_record().to_bytes()

    def answer_with(raw: bytes) -> bytes:
        return msgpack.packb({"v": 1, "ok": True, "record": raw})

    forged = bytearray(record)
    forged[20] ^= 1
    with pytest.raises(RecordError, match="signature"):
        parse_lookup_answer(answer_with(bytes(forged)), "alpha", NOW)
    with pytest.raises(RecordError, match="expired"):
        parse_lookup_answer(answer_with(record), "alpha", alpha.current_record().expires)
    with pytest.raises(RecordError, match="for 'beta'"):
        parse_lookup_answer(answer_with(beta.current_record().to_bytes()), "alpha", NOW)
    with pytest.raises(DirectoryError, match="no record"):
        parse_lookup_answer(msgpack.packb({"v": 1, "ok": True}), "alpha", NOW)
    assert service.counters == {}


def test_the_cache_serves_records_until_they_expire_and_evicts_the_least_recent():
    cache = RecordCache(max_entries=2)
    alpha, beta, gamma = keys("alpha", 1), keys("beta", 2, lifetime=10), keys("gamma", 3)
    for k in (alpha, beta):
        cache.put(k.name, k.current_record())
    assert cache.get("Alpha", NOW) == alpha.current_record()
    assert cache.get("beta", NOW + 10) is None  # expired: dropped, never returned
    assert "beta" not in cache
    cache.put("beta", beta.current_record())
    cache.get("alpha", NOW)
    cache.put("gamma", gamma.current_record())  # beta was used least recently
    assert "beta" not in cache and "alpha" in cache and len(cache) == 2


@pytest.mark.parametrize(
    "name", ["", ".hidden", "-dash", "with space", "slash/name", "ünï", "a" * 254, "x\n"]
)
def test_names_outside_the_alphabet_are_refused(name):
    with pytest.raises(ValueError):
        normalize_name(name)


def test_names_inside_the_alphabet_fold_to_lower_case():
    assert normalize_name("Echo-1.Example_Net") == "echo-1.example_net"
    assert normalize_name("a" * 253) == "a" * 253


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=MAX_MESSAGE + 10),
        st.dictionaries(
            st.sampled_from(["v", "op", "name", "record", "x"]),
            st.one_of(
                st.integers(-(2**63), 2**64 - 1),
                st.text(max_size=20),
                st.binary(max_size=200),
                st.none(),
            ),
        ).map(lambda m: msgpack.packb(m)),
    )
)
def test_any_request_bytes_get_an_answer_and_never_an_exception(request_bytes):
    service = DirectoryService(MemoryStore())
    answer = msgpack.unpackb(service.handle(request_bytes, None, NOW))
    assert answer["v"] == 1 and answer["ok"] is False and answer["error"]
