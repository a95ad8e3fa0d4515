"""Progress bars: off by default, off when stderr is not a terminal, on when both allow."""

from __future__ import annotations

import io

import numerics.progress as prog


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_switches(monkeypatch):
    monkeypatch.setattr(prog, "_ENABLED", False)
    monkeypatch.setattr(prog.sys, "stderr", _Tty())
    assert not prog.progress_enabled()
    prog.set_progress(True)
    assert prog.progress_enabled()
    monkeypatch.setattr(prog.sys, "stderr", io.StringIO())  # not a terminal
    assert not prog.progress_enabled()
    prog.set_progress(False)


def test_bar_draws_on_a_terminal_after_its_delay(monkeypatch):
    err = _Tty()
    monkeypatch.setattr(prog.sys, "stderr", err)
    monkeypatch.setattr(prog, "_ENABLED", True)
    clock = iter(range(0, 1000, 5))  # each tqdm clock read advances 5 s: past the 1 s delay
    monkeypatch.setattr("tqdm.std.time", lambda: next(clock))
    assert list(prog.progress(range(3), total=3, desc="demo")) == [0, 1, 2]
    assert "demo" in err.getvalue()


def test_bar_is_silent_when_disabled(monkeypatch):
    err = _Tty()
    monkeypatch.setattr(prog.sys, "stderr", err)
    monkeypatch.setattr(prog, "_ENABLED", False)
    with prog.progress_bar(10, "quiet") as bar:
        bar.update(10)
    assert err.getvalue() == ""
