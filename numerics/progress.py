"""Progress bars (tqdm, on stderr) that stay silent unless wanted.

A bar shows only when progress is enabled (the CLI enables it unless ``--quiet``), stderr is
a terminal, and the run lasts longer than about a second (tqdm's ``delay``). Library calls
are silent by default.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
_ENABLED = False


def set_progress(enabled: bool) -> None:
    """Enable or disable progress bars for this process."""
    global _ENABLED
    _ENABLED = bool(enabled)


def progress_enabled() -> bool:
    """Whether a bar would be drawn now (enabled and stderr is a terminal)."""
    return _ENABLED and sys.stderr.isatty()


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterator[T]:
    """``iterable`` wrapped in a tqdm bar on stderr when progress is enabled."""
    return iter(
        tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            disable=not progress_enabled(),
            delay=1.0,
            leave=False,
        )
    )


@contextmanager
def progress_bar(total: int, desc: str = "", unit: str = "it"):
    """A manual bar (``bar.update(n)``), disabled unless progress is enabled."""
    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not progress_enabled(),
        delay=1.0,
        leave=False,
    )
    try:
        yield bar
    finally:
        bar.close()
