"""Tests for numerics.io: atomic writes leave either the old file or the new one."""

from __future__ import annotations

import pytest

from numerics.io import atomic_path, write_text, write_with


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_text_creates_file_and_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "dir" / "result.json"
    out = write_text(target, '{"a": 1}\n')
    assert out == target
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n'
    assert _names(target.parent) == ["result.json"]
    write_text(target, "second ünïcode\n")  # overwrite
    assert target.read_text(encoding="utf-8") == "second ünïcode\n"
    assert _names(target.parent) == ["result.json"]


def test_write_with_and_temporary_keeps_suffix(tmp_path):
    target = tmp_path / "figure.png"
    seen = []

    def writer(tmp):
        seen.append(tmp)
        assert tmp.parent == target.parent and tmp.suffix == ".png" and tmp != target
        tmp.write_bytes(b"\x89PNG")

    write_with(target, writer)
    assert target.read_bytes() == b"\x89PNG"
    assert not seen[0].exists()
    assert _names(tmp_path) == ["figure.png"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_exception_leaves_old_file_and_no_temporary(tmp_path, exc):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(exc):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new cont")
            assert tmp.exists()
            raise exc("interrupted")
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == ["table.csv"]


def test_exception_before_first_write_leaves_no_file(tmp_path):
    target = tmp_path / "new.txt"

    def failing(tmp):
        raise ValueError("writer failed")

    with pytest.raises(ValueError, match="writer failed"):
        write_with(target, failing)
    assert _names(tmp_path) == []


def test_writer_that_removes_temporary_still_reports_its_error(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.unlink()
            raise OSError("gone")
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["x.txt"]


def test_atomic_write_keeps_usual_permissions(tmp_path):
    import os
    import stat

    from numerics.io import write_text

    path = tmp_path / "a.txt"
    write_text(path, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    path.chmod(0o640)
    write_text(path, "y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
