"""``python -m minimalt.compile``: what it refuses to do and when it has nothing to do. (The
build itself runs in ``make test``, which then runs the whole suite on what it built.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from minimalt import compile as build_tool


def test_an_existing_folder_that_is_not_a_build_is_never_replaced(tmp_path: Path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="is not a minimalt build"):
        build_tool.build(out, quiet=True)
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_current_build_is_left_as_it_is(tmp_path: Path):
    out = tmp_path / "built"
    out.mkdir()
    digest = build_tool.source_digest(*build_tool.sources())
    (out / "minimalt-compiled.txt").write_text(digest + "\n")
    (out / "marker").write_text("untouched")
    assert build_tool.build(out, quiet=True) == out.resolve()
    assert (out / "marker").read_text() == "untouched"


def test_the_digest_follows_every_source(tmp_path: Path):
    package = tmp_path / "minimalt"
    bridge = tmp_path / "uvbridge"
    (package / "proto").mkdir(parents=True)
    bridge.mkdir()
    (package / "proto" / "tunnel.py").write_text("x = 1\n")
    (bridge / "host.py").write_text("y = 2\n")
    before = build_tool.source_digest(package, bridge)
    (package / "proto" / "tunnel.py").write_text("x = 2\n")
    assert build_tool.source_digest(package, bridge) != before


def test_it_refuses_to_rebuild_from_the_build_itself(tmp_path: Path, monkeypatch):
    package = tmp_path / "out" / "minimalt"
    (package / "proto").mkdir(parents=True)
    (package / "proto" / "tunnel.py").write_text("")
    monkeypatch.setattr(build_tool, "sources", lambda: (package, tmp_path / "uvbridge"))
    with pytest.raises(SystemExit, match="this minimalt is the build in"):
        build_tool.build(tmp_path / "out", quiet=True)
