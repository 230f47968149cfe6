"""Client configuration: the directory's address and key from the environment or client.json."""

from __future__ import annotations

import base64

import pytest

from minimalt.directory.config import (
    DirectoryConfig,
    client_config_path,
    load_directory_config,
    parse_key,
)
from minimalt.directory.errors import DirectoryConfigError

KEY = bytes(range(32))


def test_keys_read_as_hex_base64url_or_base64():
    for text in (
        KEY.hex(),
        KEY.hex().upper(),
        base64.urlsafe_b64encode(KEY).decode().rstrip("="),
        base64.b64encode(KEY).decode(),
    ):
        assert parse_key(text) == KEY
    for bad in ("", "abcd", "zz" * 32, base64.b64encode(b"short").decode()):
        with pytest.raises(DirectoryConfigError, match="not 64 hex digits"):
            parse_key(bad)


def test_the_environment_configures_a_client():
    env = {"MINIMALT_DIRECTORY": "[::1]:4433", "MINIMALT_DIRECTORY_KEY": KEY.hex()}
    assert load_directory_config(env=env) == DirectoryConfig("::1", 4433, KEY)
    with pytest.raises(DirectoryConfigError, match="MINIMALT_DIRECTORY_KEY is not set"):
        load_directory_config(env={"MINIMALT_DIRECTORY": "h:1"})
    with pytest.raises(DirectoryConfigError, match="not HOST:PORT"):
        load_directory_config(env={**env, "MINIMALT_DIRECTORY": "nohost"})


def test_the_client_file_configures_a_client_and_the_environment_wins(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert load_directory_config(env=env) is None  # nothing configured: not an error
    config = DirectoryConfig("127.0.0.1", 4433, KEY)
    written = config.save(client_config_path(env))
    assert written == tmp_path / "minimalt" / "client.json"
    assert load_directory_config(env=env) == config
    assert load_directory_config(written, env={}) == config
    override = {**env, **DirectoryConfig("10.0.0.1", 53, KEY).to_env()}
    assert load_directory_config(env=override).host == "10.0.0.1"
    moved = {"MINIMALT_CONFIG": str(written)}
    assert load_directory_config(env=moved) == config


def test_a_malformed_client_file_is_one_clear_error(tmp_path):
    path = tmp_path / "client.json"
    for text, match in (
        ("not json", "expected"),
        ('{"directory": {"address": "h:1"}}', "expected"),
        ('{"directory": {"address": "h:1", "key": "abc"}}', "not 64 hex digits"),
    ):
        path.write_text(text)
        with pytest.raises(DirectoryConfigError, match=match) as error:
            load_directory_config(path, env={})
        assert str(path) in str(error.value)
    with pytest.raises(DirectoryConfigError, match="not found"):
        load_directory_config(tmp_path / "missing.json", env={})
