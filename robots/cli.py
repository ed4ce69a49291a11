"""The `footfall` command. Each subcommand imports only what it needs, so the deploy commands run on a robot's
computer without torch or gymnasium installed."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

EPILOG = """\
examples:
  footfall robots                     list the built-in robots (DoF, mass, standing height)
  footfall stand                      hold every robot at its home pose for 10 s and report
  footfall stand --robot my_bot.toml  the same for your own robot (MJCF + spec file)
  footfall bench env --quick          environment throughput against raw MuJoCo and a single-env loop
"""


def _cmd_robots(args: argparse.Namespace) -> int:
    from footfall.robots.registry import load_robot, robot_names

    names = args.robot or robot_names()
    rows = []
    for name in names:
        r = load_robot(name)
        h = f"{r.nominal_base_height_m:.3f}" if r.nominal_base_height_m is not None else "-"
        pub = f"{r.published_mass_kg:.2f}" if r.published_mass_kg is not None else "-"
        rows.append(
            (
                r.name,
                r.kind,
                str(r.num_joints),
                f"{r.total_mass_kg:.2f}",
                pub,
                h,
                f"{r.physics_dt * 1e3:g}",
                r.description,
            )
        )
    header = ("robot", "kind", "DoF", "mass kg", "published kg", "height m", "dt ms", "description")
    _print_table(header, rows)
    return 0


def _cmd_stand(args: argparse.Namespace) -> int:
    from footfall.robots.registry import load_robot, robot_names
    from footfall.robots.stand import stand

    names = args.robot or robot_names()
    results, rows = [], []
    print(
        f"Holding {len(names)} robot(s) at their home pose under their own PD gains for {args.seconds:g} s "
        "of simulated time...",
        flush=True,
    )
    for name in names:
        robot = load_robot(name)
        t0 = time.perf_counter()
        res = stand(robot, seconds=args.seconds)
        wall = time.perf_counter() - t0
        results.append(res)
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        rows.append(
            (
                res.robot,
                f"{res.mass_kg:.2f}",
                fmt(res.base_height_nominal_m),
                fmt(res.base_height_min_m),
                fmt(res.base_height_max_m),
                f"{res.max_joint_error_rad:.2e}",
                "-" if res.max_tilt_deg is None else f"{res.max_tilt_deg:.2f}",
                ",".join(res.non_foot_contacts) or "none",
                f"{res.seconds / wall:.0f}x",
                "PASS" if res.passed() else "FAIL",
            )
        )
    _print_table(
        (
            "robot",
            "mass kg",
            "nominal h",
            "min h",
            "max h",
            "joint err rad",
            "tilt deg",
            "non-foot contacts",
            "realtime",
            "result",
        ),
        rows,
    )
    print(json.dumps({"robots": [r.as_dict() for r in results], "pass": all(r.passed() for r in results)}))
    return 0 if all(r.passed() for r in results) else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    from footfall.benchmarks import BENCHMARKS

    names = [args.name] if args.name else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"footfall bench: unknown benchmark {unknown[0]!r}; available: {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    results = {}
    for name in names:
        results[name] = importlib.import_module(BENCHMARKS[name]).main(quick=args.quick)
    if len(names) > 1:
        print(json.dumps(results))
    return 0


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for r in rows:
        print(line(r))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="footfall",
        description="footfall: legged robots from MuJoCo simulation to hardware.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, Callable[[argparse.Namespace], int]] = {}

    p = sub.add_parser(
        "robots",
        help="list robots with DoF, mass and standing height",
        description="List the built-in robots (or the given ones) with DoF, mass and height.",
    )
    p.add_argument("robot", nargs="*", help="robot names or spec files (default: all built-in robots)")
    commands["robots"] = _cmd_robots

    p = sub.add_parser(
        "stand",
        help="hold each robot at its home pose and report how well it stands",
        description="Simulate each robot holding its home keyframe under its own PD gains and "
        "report base height, joint error and floor contacts. Exit code 1 if one fails.",
    )
    p.add_argument("--robot", action="append", help="robot name or spec file; repeat for several (default: all)")
    p.add_argument("--seconds", type=float, default=10.0, help="simulated seconds (default: 10)")
    commands["stand"] = _cmd_stand

    p = sub.add_parser(
        "bench",
        help="run a benchmark (prints a table, then one JSON line of its figures)",
        description="Run a benchmark, or all of them. Each measures a reference in the same process "
        "and reports medians and ratios; the last line is a JSON object of its figures.",
    )
    p.add_argument("name", nargs="?", help="benchmark name (default: all): env")
    p.add_argument("--quick", action="store_true", help="a short version (fewer repeats)")
    commands["bench"] = _cmd_bench

    parser.set_defaults(_commands=commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from footfall.robots.spec import RobotSpecError

    try:
        return args._commands[args.command](args)
    except RobotSpecError as e:
        print(f"footfall {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
