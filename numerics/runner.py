"""Running checks: one point, a parameter grid (sweep), in parallel and cached.

A grid is data: ``--set key=a,b,c`` (comma-separated values) or a TOML file whose keys map to
a value or a list of values; its points are the Cartesian product, in a fixed order (keys
sorted, values as given). Every point runs with the same master seed, and a check derives its
random numbers from (seed, names), never from a point's position, so results are identical for
any ``jobs`` and any order of the grid.

Results are cached on disk with ``joblib.Memory``, keyed by the check name, its full resolved
parameters, the seed, the size tier, the package version and a fingerprint of the package's
source (so an edited check never returns a stale result). Exceptions are never cached.
The joblib backend is configurable (``loky`` by default for ``jobs > 1``). ``dask`` connects a
``dask.distributed.Client`` to ``$DASK_SCHEDULER_ADDRESS`` (or starts a local cluster when it
is unset); ``ray`` registers ray's joblib backend (``ray.init`` honours ``$RAY_ADDRESS``).
Neither is a dependency: install ``dask[distributed]`` or ``ray`` to use them.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from numerics.errors import InvalidInputError
from numerics.progress import progress

PACKAGES = ("numerics", "theory")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the package version and every source file of ``numerics`` and ``theory``."""
    digest = hashlib.blake2b(digest_size=12)
    try:
        digest.update(metadata.version("dlcheck").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"unversioned")
    root = Path(__file__).resolve().parent.parent
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$DLCHECK_CACHE``, else ``$XDG_CACHE_HOME/dlcheck``, else ``~/.cache/dlcheck``."""
    if os.environ.get("DLCHECK_CACHE"):
        return Path(os.environ["DLCHECK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlcheck"


# ---- grids --------------------------------------------------------------------------------
def grid_from_sets(sets: dict[str, str]) -> dict[str, list[str]]:
    """``{"n_agents": "10,20"}`` → ``{"n_agents": ["10", "20"]}`` (a comma separates values)."""
    grid = {}
    for key, text in sets.items():
        values = [v.strip() for v in text.split(",")]
        if any(v == "" for v in values):
            raise InvalidInputError(f"--set {key}={text!r} has an empty value")
        grid[key] = values
    return grid


def grid_from_toml(path: str | os.PathLike) -> dict[str, list[Any]]:
    """A grid from a TOML file: each key maps to a value or a list of values.

    An optional ``[grid]`` table is used when present, so a file may carry other tables.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"grid file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"grid file {str(p)!r} is not valid TOML: {exc}") from None
    table = data.get("grid", data)
    grid = {}
    for key, value in table.items():
        values = value if isinstance(value, list) else [value]
        if not values or any(isinstance(v, (dict, list)) for v in values):
            raise InvalidInputError(
                f"grid key {key!r} in {str(p)!r} must be a number, string, boolean or a "
                "non-empty list of them"
            )
        grid[key] = values
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of a grid, keys sorted, values in the order given."""
    keys = sorted(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


# ---- running ------------------------------------------------------------------------------
def file_digests(params: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, str], ...]:
    """(key, content hash) of every parameter naming an existing file (e.g. ``data=x.csv``).

    Part of the cache key, so editing a data file recomputes the checks that read it.
    """
    digests = []
    for key, value in params:
        if isinstance(value, str) and value and Path(value).is_file():
            digest = hashlib.blake2b(Path(value).read_bytes(), digest_size=12).hexdigest()
            digests.append((key, digest))
    return tuple(digests)


def _run_point(
    name: str,
    params: tuple[tuple[str, Any], ...],
    quick: bool,
    seed: int,
    fingerprint: str,
    inputs: tuple[tuple[str, str], ...] = (),
) -> list[dict[str, Any]]:
    """Run one check at fully resolved parameters; rows as dictionaries (cacheable).

    ``fingerprint`` and ``inputs`` (hashes of the code and of input files) only key the cache.
    Dense linear algebra here is on small matrices, where one BLAS thread is fastest.
    """
    import time

    from threadpoolctl import threadpool_limits

    from numerics.checks import get_check

    start = time.perf_counter()
    with threadpool_limits(1):
        rows = get_check(name).function(get_check(name), dict(params), seed)
    elapsed = round(time.perf_counter() - start, 3)
    return [{**r.to_dict(), "seconds": elapsed} for r in rows]


@dataclass(frozen=True)
class PointResult:
    """The rows of one grid point and whether they came from the cache."""

    rows: list[dict[str, Any]]
    cached: bool


@dataclass(frozen=True)
class Runner:
    """Runs check points with an optional on-disk cache and a joblib pool."""

    quick: bool = True
    seed: int = 0
    jobs: int = 1
    cache_dir: Path | None = None
    force: bool = False
    backend: str | None = None

    def _start_backend(self) -> str:
        """Validate the backend name and start a dask client / register ray if asked."""
        from joblib.parallel import BACKENDS

        name = self.backend or "loky"
        if name == "dask":
            try:
                from dask.distributed import Client
            except ImportError:
                raise InvalidInputError(
                    "--backend dask needs dask.distributed: pip install 'dask[distributed]'"
                ) from None
            Client(os.environ.get("DASK_SCHEDULER_ADDRESS"))
        elif name == "ray":
            try:
                from ray.util.joblib import register_ray
            except ImportError:
                raise InvalidInputError("--backend ray needs ray: pip install ray") from None
            register_ray()
        elif name not in BACKENDS:
            allowed = ", ".join(sorted({*BACKENDS, "dask", "ray"}))
            raise InvalidInputError(f"--backend {name!r} is not known; allowed: {allowed}")
        return name

    def _cached(self):
        if self.cache_dir is None:
            return None
        from joblib import Memory

        return Memory(str(self.cache_dir), verbose=0).cache(_run_point)

    def run_point(self, name: str, overrides: dict[str, Any]) -> PointResult:
        """One check at one parameter point (defaults ← quick tier ← overrides)."""
        from numerics.checks import get_check

        params = tuple(sorted(get_check(name).parameters(self.quick, overrides).items()))
        args = (name, params, self.quick, self.seed, code_fingerprint(), file_digests(params))
        cached = self._cached()
        if cached is None:
            return PointResult(_run_point(*args), False)
        hit = not self.force and cached.check_call_in_cache(*args)
        if self.force:
            cached.call(*args)  # recompute and overwrite; read back below
        return PointResult(cached(*args), hit)

    def run(self, jobs_list: list[tuple[str, dict[str, Any]]]) -> list[PointResult]:
        """Run (check, overrides) pairs; order of results = order of ``jobs_list``."""
        if self.jobs < 1:
            raise InvalidInputError(f"--jobs must be >= 1; got {self.jobs}")
        # resolve parameters first, so bad input fails before any work starts
        from numerics.checks import get_check

        for name, overrides in jobs_list:
            get_check(name).parameters(self.quick, overrides)
        desc = "checks" if len({n for n, _ in jobs_list}) > 1 else jobs_list[0][0]
        if self.jobs == 1 or len(jobs_list) == 1:
            return [
                self.run_point(n, o)
                for n, o in progress(jobs_list, total=len(jobs_list), desc=desc)
            ]
        from joblib import Parallel, delayed, parallel_config

        with parallel_config(backend=self._start_backend(), n_jobs=self.jobs):
            outputs = Parallel(return_as="generator")(
                delayed(self.run_point)(n, o) for n, o in jobs_list
            )
            return list(progress(outputs, total=len(jobs_list), desc=desc))
