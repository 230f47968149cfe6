"""Python exceptions become the coded errors Node sees (docs/bridge.md, "Errors")."""

from __future__ import annotations

import errno

import pytest

from minimalt.aio.errors import (
    ConnectionRefused,
    ConnectionReset,
    ConnectTimeoutError,
    LocalProtocolError,
    RecordError,
    RemoteProtocolError,
    TunnelClosedError,
)
from minimalt.directory.errors import DirectoryConfigError, DirectoryUnavailable, NameNotFound
from minimalt.proto import constants as C
from minimalt.uvbridge.errors import error_code, error_fields


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConnectionRefused("no", C.ERR_UNKNOWN_SERVICE), "ECONNREFUSED"),
        (ConnectionReset("reset", C.ERR_APPLICATION), "ECONNRESET"),
        (ConnectTimeoutError("slow"), "ETIMEDOUT"),
        (TunnelClosedError("idle", C.ERR_IDLE_TIMEOUT), "ETIMEDOUT"),
        (TunnelClosedError("bye", C.ERR_NONE), "EMLTCLOSED"),
        (RecordError("bad magic"), "EMLTRECORD"),
        (NameNotFound("shop.example"), "ENOTFOUND"),
        (DirectoryConfigError("no directory configured"), "EMLTDIRECTORY"),
        (DirectoryUnavailable("no answer"), "EMLTDIRECTORY"),
        (RemoteProtocolError("bad frame"), "EMLTPROTO"),
        (LocalProtocolError("misuse"), "EMLTLOCAL"),
        (OSError(errno.EADDRINUSE, "Address already in use"), "EADDRINUSE"),
        (OSError("cannot resolve 'nowhere.invalid'"), "ENOTFOUND"),
        (ValueError("service name too long"), "ERR_INVALID_ARG_VALUE"),
        (RuntimeError("surprise"), "EMLTINTERNAL"),
    ],
)
def test_each_exception_maps_to_its_code(exc: BaseException, code: str) -> None:
    assert error_code(exc) == code


def test_an_errno_lost_by_a_re_raise_is_found_on_the_cause() -> None:
    try:
        try:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        except OSError as inner:
            raise OSError("could not bind to local_addr") from inner
    except OSError as outer:
        assert error_code(outer) == "EADDRINUSE"


def test_fields_carry_the_protocol_code_of_minimalt_errors_only() -> None:
    assert error_fields(ConnectionReset("reset", 8)) == {
        "code": "ECONNRESET",
        "message": "reset",
        "mlt": 8,
    }
    assert "mlt" not in error_fields(OSError(errno.EACCES, "denied"))


def test_directory_errors_carry_the_directory_s_own_code() -> None:
    assert error_fields(NameNotFound("shop.example"))["directory"] == "not_found"
