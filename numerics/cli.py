"""The ``dlcheck`` command: list, check, figures, report.

Exit codes: 0 every check passed, 1 a check failed, 2 bad input (one line on stderr, no
traceback). See shared/DESIGN.md, "CLI contract".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from numerics.errors import DlcheckError
from numerics.progress import set_progress

if TYPE_CHECKING:
    from numerics.runner import Runner

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"dlcheck: error: {message} (see 'dlcheck --help')\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _seed(text: str) -> int:
    """argparse type of --seed: an integer >= 0 (numpy's SeedSequence needs it)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {value}")
    return value


def _parse_sets(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DlcheckError(f"--set expects key=value; got {item!r}")
        out[key.strip()] = value
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table: per check a header (claim, source, tag), then one line per row
    (case, relation, predicted, measured, interval, verdict), columns aligned throughout."""
    head = ("case", "relation", "predicted", "measured", "interval", "verdict")
    body = [
        (
            r["case"],
            r["relation"],
            _fmt(r["predicted"]),
            _fmt(r["measured"]),
            f"[{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}]",
            r["verdict"].upper(),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = "  " + "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head).rstrip(), line.format(*("-" * w for w in widths))]
    current = None
    for r, cells in zip(rows, body, strict=True):
        if r["check"] != current:
            current = r["check"]
            out.append(f"{r['check']}: {r['claim']}  [{r['tag']}; {r['source']}]")
        out.append(line.format(*cells).rstrip())
    return "\n".join(out)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of check rows, with claim and source."""
    cols = "check case claim source relation predicted measured interval verdict".split()
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append(
            f"| {r['check']} | {r['case']} | {r['claim']} | {r['source']} | "
            f"{r['relation']} | {_fmt(r['predicted'])} | {_fmt(r['measured'])} | "
            f"[{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}] | {r['verdict']} |"
        )
    return "\n".join(out) + "\n"


def run_checks(
    names: list[str] | None,
    *,
    runner: Runner,
    trials: int | None = None,
    sets: dict[str, str] | None = None,
    grid_file: str | None = None,
) -> list[dict[str, Any]]:
    """Run named checks (all when ``names`` is None) over a parameter grid; rows as dicts.

    ``sets`` values may list several values separated by commas; with ``grid_file`` (TOML)
    they form a grid whose points are all run. With all checks, a key applies to the checks
    that have it. Each row records ``cached`` (whether it came from the cache).
    """
    from numerics.checks import get_check, load_all
    from numerics.runner import grid_from_sets, grid_from_toml, grid_points

    checks = [get_check(n) for n in names] if names else list(load_all().values())
    grid = grid_from_toml(grid_file) if grid_file else {}
    grid.update(grid_from_sets(sets or {}))
    if trials is not None:
        if trials < 1:
            raise DlcheckError(f"--trials must be >= 1; got {trials}")
        grid["trials"] = [trials]
    unknown = [k for k in grid if k != "trials" and not any(k in c.defaults for c in checks)]
    if unknown:
        if names:  # let the check's own message list its parameters
            checks[0].parameters(True, {unknown[0]: grid[unknown[0]][0]})
        raise DlcheckError(f"no check has parameter(s) {', '.join(unknown)}")
    work = []
    for check in checks:
        own = {k: v for k, v in grid.items() if k in check.defaults}
        work += [(check.name, point) for point in grid_points(own)]
    rows = []
    for (_, point), result in zip(work, runner.run(work), strict=True):
        for row in result.rows:
            rows.append({**row, "cached": result.cached, "grid_point": point})
    return rows


def _cache_dir(args: argparse.Namespace) -> Path | None:
    from numerics.runner import default_cache_dir

    return None if args.no_cache else Path(args.cache_dir or default_cache_dir())


def _runner(args: argparse.Namespace, quick: bool) -> Runner:
    from numerics.runner import Runner

    return Runner(
        quick=quick,
        seed=args.seed,
        jobs=args.jobs,
        cache_dir=_cache_dir(args),
        force=args.force,
        backend=args.backend,
    )


def _cache_line(rows: list[dict[str, Any]]) -> str:
    points = {(r["check"], json.dumps(r["grid_point"], sort_keys=True)): r["cached"] for r in rows}
    hits = sum(points.values())
    return f"cache: {hits} hit(s), {len(points) - hits} miss(es)"


def _cmd_list(args: argparse.Namespace) -> int:
    from numerics.checks import load_all

    for check in load_all().values():
        print(
            f"{check.name}\n    claim:    {check.claim}\n    source:   {check.source} "
            f"[{check.tag}]\n    relation: {check.relation}\n    params:   "
            + ", ".join(f"{k}={v}" for k, v in check.defaults.items())
        )
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    if bool(args.names) == bool(args.all):
        raise DlcheckError("give check names or --all (not both); 'dlcheck list' shows the names")
    rows = run_checks(
        args.names or None,
        runner=_runner(args, quick=not args.full),
        trials=args.trials,
        sets=_parse_sets(args.set),
        grid_file=args.grid,
    )
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print(format_table(rows))
        print(_cache_line(rows), file=sys.stderr)
        failed = sum(r["verdict"] != "pass" for r in rows)
        print(f"\n{len(rows) - failed} passed, {failed} failed")
    return EXIT_OK if all(r["verdict"] == "pass" for r in rows) else EXIT_FAIL


def _cmd_figures(args: argparse.Namespace) -> int:
    from figures import build_figures

    if args.names and args.all:
        raise DlcheckError("give figure names or --all, not both")
    records = build_figures(
        args.names or None,
        Path(args.out),
        quick=args.quick,
        cache_dir=_cache_dir(args),
        force=args.force,
        jobs=args.jobs,
    )
    for rec in records:
        reused = " (unchanged, from the cache)" if rec.cached else ""
        print(f"{rec.name}: " + ", ".join(str(p) for p in rec.files) + reused)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from figures import build_figures
    from numerics.io import write_text

    quick = not args.full
    start = time.perf_counter()
    rows = run_checks(None, runner=_runner(args, quick=quick))
    print(_cache_line(rows), file=sys.stderr)
    check_seconds = time.perf_counter() - start
    records = build_figures(
        None,
        Path(args.out),
        quick=quick,
        cache_dir=_cache_dir(args),
        force=args.force,
        jobs=args.jobs,
    )
    out = Path(args.out)
    write_text(out / "checks.json", json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    write_text(out / "checks.md", "# Checks\n\n" + format_markdown(rows))
    print(format_table(rows))
    failed = sum(r["verdict"] != "pass" for r in rows)
    print(
        f"\n{len(rows) - failed} passed, {failed} failed "
        f"(checks {check_seconds:.1f} s, total {time.perf_counter() - start:.1f} s)"
    )
    print(
        f"figures: {', '.join(r.name for r in records)} -> {out}/ "
        f"(tables: {out / 'checks.json'}, {out / 'checks.md'})"
    )
    return EXIT_OK if failed == 0 else EXIT_FAIL


def _cmd_derive(args: argparse.Namespace) -> int:
    import theory

    if not args.name:
        for d in theory.load_all().values():
            extra = f" (--strategy {'|'.join(d.strategies)})" if d.strategies else ""
            print(f"{d.name}{extra}\n    {d.description}")
        return EXIT_OK
    try:
        print(theory.derive(args.name, args.strategy, args.order, args.latex))
    except theory.DerivationError as exc:
        raise DlcheckError(str(exc)) from None
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dlcheck``."""
    parser = _Parser(prog="dlcheck", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    runs = _Parser(add_help=False)  # options of every command that computes
    runs.add_argument("--quiet", action="store_true", help="no progress bars")
    runs.add_argument("--jobs", type=int, default=1, help="parallel workers (joblib)")
    runs.add_argument("--force", action="store_true", help="recompute, ignoring the cache")
    runs.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    runs.add_argument(
        "--cache-dir", help="cache folder (default $DLCHECK_CACHE or ~/.cache/dlcheck)"
    )
    common = _Parser(add_help=False, parents=[runs])
    common.add_argument("--seed", type=_seed, default=0, help="master seed >= 0 (default 0)")
    common.add_argument("--backend", help="joblib backend (default loky; dask, ray, ...)")

    sub.add_parser("list", help="list every check with its claim, source and relation")

    chk = sub.add_parser("check", parents=[common], help="run checks")
    chk.add_argument("names", nargs="*", help="check names (see 'dlcheck list')")
    chk.add_argument("--all", action="store_true", help="run every check")
    size = chk.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, the default (CI tier)")
    size.add_argument("--full", action="store_true", help="paper-size runs")
    chk.add_argument("--json", action="store_true", help="one JSON object per row")
    chk.add_argument("--trials", type=int, help="Monte Carlo trials (checks that simulate)")
    chk.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE[,VALUE...]",
        help="override a parameter; several values make a grid (repeatable)",
    )
    chk.add_argument("--grid", metavar="FILE.toml", help="parameter grid as a TOML file")

    der = sub.add_parser("derive", help="print a derived expression (no name: list them)")
    der.add_argument("name", nargs="?", help="quantity, e.g. excess-risk")
    der.add_argument("--strategy", help="centralized, consensus, diffusion, ...")
    der.add_argument("--order", type=int, help="order of the expansion in the step size")
    der.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")

    fig = sub.add_parser(
        "figures", parents=[runs], help="build figures (unchanged ones are reused from the cache)"
    )
    fig.add_argument("names", nargs="*", help="figure names (default: all)")
    fig.add_argument("--all", action="store_true", help="build every figure")
    fig.add_argument("--quick", action="store_true", help="fewer trials (faster, noisier)")
    fig.add_argument("--out", default="figures", help="output folder (default ./figures)")

    rep = sub.add_parser(
        "report", parents=[common], help="the main job: every check and every figure, with tables"
    )
    rep.add_argument("--full", action="store_true", help="paper-size runs (default quick)")
    rep.add_argument("--out", default="figures", help="output folder (default ./figures)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlcheck`` console script."""
    args = build_parser().parse_args(argv)
    set_progress(not getattr(args, "quiet", False))
    handlers = {
        "list": _cmd_list,
        "check": _cmd_check,
        "derive": _cmd_derive,
        "figures": _cmd_figures,
        "report": _cmd_report,
    }
    try:
        return handlers[args.command](args)
    except DlcheckError as exc:
        sys.stderr.write(f"dlcheck: error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("dlcheck: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
