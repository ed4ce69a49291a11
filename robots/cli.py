"""The `footfall` command. Each subcommand imports only what it needs, so the deploy commands run on a robot's
computer without torch or gymnasium installed."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

EPILOG = """\
examples:
  footfall robots                     list the built-in robots (DoF, mass, standing height)
  footfall stand                      hold every robot at its home pose for 10 s and report
  footfall stand --robot my_bot.toml  the same for your own robot (MJCF + spec file)
  footfall bench env --quick          environment throughput against raw MuJoCo and a single-env loop
  footfall bench train                time to a walking quadruped, 3 seeds, against Stable-Baselines3 PPO
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
    suite = len(names) > 1
    for name in names:
        options = {}
        if name == "train":
            minutes = args.minutes
            if suite and args.quick and minutes is None:
                minutes = 1.0  # the quick suite stays under 5 minutes: 1 min for footfall, 1 for SB3
            options = dict(preset=args.preset, seeds=args.seeds, minutes=minutes, out=args.out)
            options["reference"] = not args.no_reference
        if name == "deploy" and args.robot:
            options = dict(robot=args.robot)
        if suite:
            print(f"\n===== footfall bench {name}{' --quick' if args.quick else ''} =====", flush=True)
        results[name] = importlib.import_module(BENCHMARKS[name]).main(quick=args.quick, **options)
    if suite:
        from footfall.benchmarks.suite import write

        summary = write(results, out=args.out or "bench_out")
        print(json.dumps({"summary": summary, "results": results}))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from footfall.robots.overrides import apply_overrides, describe_fields
    from footfall.training.presets import preset

    cfg = apply_overrides(preset(args.preset), args.set or [])
    if args.env:
        env_pairs = [tuple(p.split("=", 1)) for p in args.env]
        from footfall.envs import task_config
        from footfall.robots.overrides import parse_value

        overrides = tuple((k.strip(), parse_value(v.strip())) for k, v in env_pairs)
        # A spec file given by a relative path is stored absolute, so eval/export/resume work from any directory.
        overrides = tuple(
            (k, str(Path(v).resolve())) if k == "robot" and isinstance(v, str) and Path(v).is_file() else (k, v)
            for k, v in overrides
        )
        task_config(cfg.task, **dict(overrides))  # validate now, with a message naming the valid fields
        cfg = dataclasses.replace(cfg, env_overrides=cfg.env_overrides + overrides)
    if args.minutes is not None:
        cfg = apply_overrides(cfg, [f"minutes={args.minutes}"])
    if args.show_config:
        print("\n".join(describe_fields(cfg)))
        return 0
    from footfall.training.train import train

    summary = train(cfg, args.out or f"runs/{args.preset}", resume=args.resume)
    print(json.dumps(summary))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from footfall.deploy.console import ViewerUnavailable
    from footfall.training.evaluate import evaluate_run

    try:
        result = evaluate_run(
            args.run, episodes=args.episodes, seed=args.seed, video=not args.no_video, viewer=args.viewer
        )
    except ViewerUnavailable as e:
        print(f"footfall eval: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from footfall.training.export import export_run

    out = args.output or str(__import__("pathlib").Path(args.run) / "policy.onnx")
    print(f"Exporting {args.run} and checking torch/onnxruntime parity on {args.parity} recorded observations...")
    report = export_run(args.run, out, parity_samples=args.parity, evaluate=not args.no_eval)
    print(
        f"wrote {report['onnx']} ({report['bytes'] / 1024:.0f} KiB): {report['robot']} on {report['task']}, "
        f"obs {report['observation_size']} -> action {report['action_size']}, "
        f"parity max |a_torch - a_onnx| = {report['parity_max_abs_error']:.2e} over {report['parity_samples']}"
    )
    print(json.dumps(report))
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from footfall.deploy.console import ViewerUnavailable
    from footfall.deploy.main import deploy
    from footfall.deploy.safety import safety_config
    from footfall.robots.contract import ContractMismatchError

    try:
        safety = safety_config(args.safety or [])
    except ValueError as e:
        print(f"footfall deploy: {e}", file=sys.stderr)
        return 2
    if args.stand_up_s <= 0:
        print("footfall deploy: --stand-up-s must be > 0", file=sys.stderr)
        return 2
    try:
        report = deploy(
            args.policy,
            robot=args.robot,
            spec=args.spec,
            duration_s=args.duration,
            log=args.log,
            operator_port=args.operator_port or None,
            autostart=args.autostart,
            velocity=tuple(args.velocity) if args.velocity else None,
            rt=args.realtime,
            cpu=args.cpu,
            safety=safety,
            stand_up_s=args.stand_up_s,
            key=args.key,
            force=args.force,
            viewer=args.viewer,
            status=not args.no_status,
        )
    except ContractMismatchError as e:
        print(f"footfall deploy: refusing to run: {e}", file=sys.stderr)
        return 2
    except (FileExistsError, ViewerUnavailable) as e:
        print(f"footfall deploy: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


def _cmd_sim2sim(args: argparse.Namespace) -> int:
    from footfall.deploy.console import ViewerUnavailable
    from footfall.deploy.sim2sim import Sim2SimConfig, sim2sim
    from footfall.robots.contract import ContractMismatchError

    cfg = Sim2SimConfig(
        episodes=args.episodes,
        physics_dt=args.physics_dt,
        latency_s=(args.latency_ms[0] / 1e3, args.latency_ms[1] / 1e3),
    )
    try:
        r = sim2sim(
            args.policy, robot_spec=args.robot_spec, cfg=cfg, reference_rmse=args.reference_rmse, viewer=args.viewer
        )
    except ContractMismatchError as e:
        print(f"footfall sim2sim: refusing to run: {e}", file=sys.stderr)
        return 2
    except ViewerUnavailable as e:
        print(f"footfall sim2sim: {e}", file=sys.stderr)
        return 2
    _print_table(
        (
            "robot",
            "physics dt",
            "latency ms",
            "episodes",
            "falls",
            "lin vel RMSE",
            "training RMSE",
            "ratio",
            "torque sat.",
            "CoT",
            "result",
        ),
        [
            (
                r["robot"],
                f"{r['physics_dt'] * 1e3:g} ms",
                f"{args.latency_ms[0]:g}-{args.latency_ms[1]:g}",
                str(r["episodes"]),
                str(r["falls"]),
                f"{r['lin_vel_rmse']:.3f}" if r["lin_vel_rmse"] is not None else "-",
                f"{r['reference_rmse']:.3f}" if r["reference_rmse"] else "-",
                f"{r['rmse_ratio']:.2f}" if r["rmse_ratio"] else "-",
                f"{r['torque_saturation']:.1%}",
                f"{r['cost_of_transport']:.2f}" if r["cost_of_transport"] else "-",
                "PASS" if r["pass"] else "FAIL",
            )
        ],
    )
    if r["reference_rmse"] is None:
        print("no training-env RMSE in the policy file (exported with --no-eval): pass --reference-rmse")
    print(json.dumps(r))
    return 0 if r["pass"] else 1


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from footfall.training.quickstart import quickstart

    try:
        return quickstart(
            args.out, minutes=args.minutes, compare_episodes=args.compare_episodes, video=not args.no_video
        )
    except KeyboardInterrupt:
        print("\nstopped; run the same command again to continue from the last finished stage", file=sys.stderr)
        return 130


def _cmd_compare(args: argparse.Namespace) -> int:
    from footfall.deploy.compare import CompareConfig, compare, table_rows
    from footfall.robots.contract import ContractMismatchError

    cfg = CompareConfig(seed=args.seed)
    if args.quick:
        cfg = CompareConfig(seed=args.seed, episodes=2, episode_s=10.0, targets=5, pushes=(0.5, 1.0))
    if args.episodes is not None:
        cfg = dataclasses.replace(cfg, episodes=args.episodes)
    try:
        r = compare(args.controllers, robot=args.robot, out=args.out, cfg=cfg)
    except (ContractMismatchError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"footfall compare: {e}", file=sys.stderr)
        return 2
    _print_table(*table_rows(r))
    print(f"report: {r['report']}")
    print(json.dumps(r))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from footfall.deploy.telemetry import replay

    r = replay(args.log, args.policy)
    print(
        f"{r['run_ticks']} RUN ticks of {r['ticks']} replayed through {args.policy}: largest action difference "
        f"{r['max_action_diff']:.3g}"
        + (" (log cut off mid-record; read up to its last whole tick)" if r["truncated"] else "")
    )
    print(json.dumps(r))
    return 0


# Subcommands with parsers of their own (every argument after the name, --help included, goes to them), in the
# module that owns the code, so that each runs on a robot's computer with the base install.
DELEGATED: dict[str, tuple[str, str, str]] = {
    "bridge": (
        "footfall.deploy.unitree.bridge",
        "bridge_main",
        "serve a MuJoCo robot over the authenticated UDP link, as a hardware bridge would (--sdk unitree: on "
        "Unitree SDK2's DDS topics, as the robot would)",
    ),
    "keygen": ("footfall.deploy.keys", "keygen_main", "write a key file (mode 0600) for the UDP link and the operator"),
    "operator": ("footfall.deploy.operator", "operator_main", "send an operator command to a running footfall deploy"),
    "log": ("footfall.deploy.logtool", "log_main", "inspect a telemetry log, or export it to MCAP"),
}


def _run_delegated(name: str, argv: list[str]) -> int:
    import importlib

    module, func, _ = DELEGATED[name]
    return getattr(importlib.import_module(module), func)(argv)


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
        "train",
        help="train a policy from a preset (PPO or SAC)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a policy. Presets: quadruped-flat, quadruped-rough, biped-flat (PPO), arm-reach (SAC).\n"
        "Progress bar with ETA; TensorBoard logs in OUT/tb; checkpoints written atomically every few iterations\n"
        "and on Ctrl-C; --resume continues a stopped run bit for bit; OUT/learning_curve.png at the end.",
        epilog="examples:\n"
        "  footfall train quadruped-flat --out runs/go1 --minutes 15\n"
        "  footfall train quadruped-flat --out runs/go1 --resume\n"
        "  footfall train biped-flat --out runs/h1 --set ppo.learning_rate=3e-4 --set num_envs=512\n"
        "  footfall train quadruped-flat --env vx_range='(-1.5, 1.5)'\n"
        "  footfall train quadruped-flat --show-config     list every field --set accepts",
    )
    p.add_argument("preset", help="quadruped-flat | quadruped-rough | go2-flat | biped-flat | arm-reach")
    p.add_argument("--out", default=None, help="run directory (default: runs/PRESET)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a run field (see --show-config)")
    p.add_argument("--env", action="append", metavar="FIELD=VALUE", help="override a task config field")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    commands["train"] = _cmd_train

    p = sub.add_parser(
        "eval",
        help="evaluate a trained run over seeded episodes",
        description="Evaluate a run's deterministic policy over N seeded episodes with randomization on: "
        "velocity-tracking RMSE, fall rate, cost of transport (legged) or reach error (arm). Writes RUN/eval.json "
        "(and a video when offscreen rendering works). The last line is a JSON object.",
    )
    p.add_argument("run", help="run directory: its best.pt when training chose one by checks, else checkpoint.pt")
    p.add_argument("--episodes", type=int, default=20, help="seeded episodes (default: 20)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--no-video", action="store_true", help="skip the rollout video")
    p.add_argument("--viewer", action="store_true", help="watch the first episode in MuJoCo's viewer, in real time")
    commands["eval"] = _cmd_eval

    p = sub.add_parser(
        "export",
        help="export a trained run to ONNX with its policy contract",
        description="Write the run's deterministic actor as ONNX: raw observation in, action out, observation "
        "normalization folded in, the policy contract (joint order, default pose, gains, limits, action scaling, "
        "observation layout, timing) as JSON in the metadata. onnx.checker and a torch/onnxruntime parity check on "
        "observations recorded from rollouts must pass before the file is written (atomically).",
    )
    p.add_argument("run", help="run directory: its best.pt when training chose one by checks, else checkpoint.pt")
    p.add_argument("-o", "--output", help="the .onnx file to write (default: RUN/policy.onnx)")
    p.add_argument("--parity", type=int, default=10_000, help="observations for the parity check (default: 10000)")
    p.add_argument("--no-eval", action="store_true", help="skip the training-env evaluation stored for sim2sim")
    commands["export"] = _cmd_export

    p = sub.add_parser(
        "deploy",
        help="run an exported policy on a simulated or real robot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run policy.onnx in the real-time deploy loop (no torch, no gymnasium). The contract in the "
        "file is checked\nagainst the robot first (the robot: a built-in name from the contract, or --spec). The "
        "loop starts PASSIVE\n(damping): g stands up, r runs the policy, x damps, p resets. Faults (stale or old "
        "state, NaN, a broken\nIMU quaternion, tilt, joint speed or range, a non-finite action, missed deadlines, "
        "an exception) damp the robot\nwithin three control periods, are printed and logged, and stay latched until "
        "an operator reset. SIGTERM and\nSIGHUP damp, flush the log and exit. Over UDP, --key (footfall keygen) "
        "authenticates the link and the\noperator port; without it the bridge must be on this machine. Operator "
        "velocities are clipped to the ranges\nthe policy was trained on.",
        epilog="examples:\n"
        "  footfall deploy policy.onnx --robot sim                     MuJoCo robot in real time, keyboard control\n"
        "  footfall bridge --robot go1 --key robot.key &\n"
        "  footfall deploy policy.onnx --robot udp://127.0.0.1:9870 --key robot.key\n"
        "  footfall deploy policy.onnx --robot sim --autostart --velocity 0.5 0 0 --duration 20\n"
        "  footfall deploy policy.onnx --robot udp://10.0.0.2:9870 --key robot.key --safety max_tilt_deg=30\n"
        "  footfall bridge --sdk unitree --robot go1 &                 the same topics and types as a Go1/Go2\n"
        "  footfall deploy policy.onnx --robot unitree://lo             (unitree://eth0 on the robot's network)\n"
        "  echo '{\"vx\": 0.5}' | nc -u -w0 127.0.0.1 9871          operator velocity over UDP",
    )
    p.add_argument("policy", help="policy.onnx written by footfall export")
    p.add_argument(
        "--robot",
        default="sim",
        help="sim, udp://HOST:PORT of a robot bridge, or unitree://IFACE: a Unitree robot over SDK2 (DDS) on that "
        'network interface (pip install "footfall[unitree]"; docs/unitree.md) (default: sim)',
    )
    p.add_argument(
        "--spec",
        help="robot name or spec file (default: the built-in robot the policy's contract names; a "
        "policy for any other robot needs --spec)",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--log", help="telemetry log path (default: deploy-DATE.fflog)")
    p.add_argument("--operator-port", type=int, default=9871, help="UDP port for operator commands (0: off)")
    p.add_argument("--autostart", action="store_true", help="stand up and run at once, without operator keys")
    p.add_argument("--velocity", type=float, nargs="+", help="hold this command (vx vy yaw_rate) instead of operator")
    p.add_argument("--realtime", action="store_true", help="ask for SCHED_FIFO, locked memory (and --cpu pinning)")
    p.add_argument("--cpu", type=int, help="with --realtime: pin the loop to this CPU")
    p.add_argument(
        "--stand-up-s",
        type=float,
        default=2.0,
        help="seconds to ramp from the measured pose to the default pose on g (default: 2)",
    )
    p.add_argument(
        "--safety",
        action="append",
        metavar="FIELD=VALUE",
        help="override a safety limit (repeatable): max_tilt_deg=60, velocity_margin=1.5 (x the joint velocity "
        "limit), max_target_rate_rad_s=25, stale_periods=3, command_timeout_s=0.5, torque_reach=2.0, "
        "quat_norm_tolerance=0.1, position_margin_rad=0.1, max_state_age_s=0.05, max_missed_deadlines=3, "
        "max_gain_scale=2 (see docs/safety.md)",
    )
    p.add_argument(
        "--key",
        help="key file shared with the robot's bridge (footfall keygen KEY): authenticates the UDP link and the "
        "operator port. Required for a bridge that is not on this machine",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing telemetry log")
    p.add_argument(
        "--viewer", action="store_true", help="with --robot sim: watch it in MuJoCo's viewer (needs a display)"
    )
    p.add_argument(
        "--no-status", action="store_true", help="no live status line on stderr (mode, command, lateness, fault)"
    )
    commands["deploy"] = _cmd_deploy

    p = sub.add_parser(
        "sim2sim",
        help="gate an exported policy on a MuJoCo robot unlike the training one",
        description="Run policy.onnx through the deploy runtime on the MujocoRobot with another physics step, "
        "command latency and sensor noise, over 20 seeded 20 s command sequences. Pass: no falls and velocity "
        "RMSE within 25% of the training-env evaluation stored in the file. --robot-spec runs it on another "
        "description of the robot (its own MJCF and spec file: joint names and gains from there). Exit code 1 "
        "on FAIL; the last line is JSON.",
    )
    p.add_argument("policy", help="policy.onnx written by footfall export")
    p.add_argument("--robot-spec", help="spec file of another model of the same robot (default: the built-in one)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--physics-dt", type=float, default=0.002, help="physics step, s (default: 0.002)")
    p.add_argument(
        "--latency-ms",
        type=float,
        nargs=2,
        default=(0.0, 20.0),
        metavar=("LO", "HI"),
        help="command latency range, ms (default: 0 20)",
    )
    p.add_argument("--reference-rmse", type=float, help="training RMSE to compare with (default: from the file)")
    p.add_argument("--viewer", action="store_true", help="watch the episodes in MuJoCo's viewer, in real time")
    commands["sim2sim"] = _cmd_sim2sim

    p = sub.add_parser(
        "quickstart",
        help="the whole path on defaults: train, evaluate, export, sim2sim, compare with MPC, report",
        description="Train the quadruped on flat ground, evaluate it (with a rollout GIF when offscreen rendering "
        "works), export the ONNX policy, pass it through the sim-to-sim gate in the deploy runtime, compare it "
        "with the convex-MPC baseline, and write OUT/report.md with every figure and plot. About 18 minutes on two "
        "cores with the defaults; Ctrl-C stops and the same command continues where it stopped.",
    )
    p.add_argument("--out", default="runs/quickstart", help="output folder (default: runs/quickstart)")
    p.add_argument("--minutes", type=float, default=15.0, help="training budget (default: 15)")
    p.add_argument("--compare-episodes", type=int, default=4, help="command episodes per controller (default: 4)")
    p.add_argument("--no-video", action="store_true", help="skip the rollout GIF")
    commands["quickstart"] = _cmd_quickstart

    p = sub.add_parser(
        "compare",
        help="policies and classical baselines on the same seeded scenarios, one report",
        description="Run each controller (policy.onnx files, or the baselines mpc (quadruped), zmp (biped), ik "
        "(arm)) through the deploy runtime on the MujocoRobot in lockstep, over the same seeded scenarios: "
        "command sequences, the same at half friction and with a payload, sideways pushes of growing size (arm: "
        "reachable targets). Writes OUT/report.md with a table and PNG plots, and OUT/result.json; a re-run with "
        "the same seed gives the same numbers (compute times aside).",
        epilog="example: footfall compare runs/q/policy.onnx mpc --out compare_go1",
    )
    p.add_argument("controllers", nargs="+", help="policy.onnx paths and/or baseline names (mpc, zmp, ik)")
    p.add_argument("--robot", help="robot name or spec file (default: the first policy's robot)")
    p.add_argument("--out", default="compare", help="report folder (default: ./compare)")
    p.add_argument("--episodes", type=int, help="nominal command episodes (default 10; 2 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2 short episodes, 2 pushes, 5 arm targets")
    commands["compare"] = _cmd_compare

    p = sub.add_parser(
        "replay",
        help="re-run a policy on a telemetry log's observations",
        description="Feed the observations recorded in a deploy telemetry log back through policy.onnx and report "
        "the largest difference to the logged actions (0 when the same file ran).",
    )
    p.add_argument("log", help="telemetry log (.fflog) written by footfall deploy")
    p.add_argument("policy", help="policy.onnx")
    commands["replay"] = _cmd_replay

    for name, (_, _, help_text) in DELEGATED.items():
        p = sub.add_parser(name, help=help_text, description=f"{help_text} (footfall {name} --help)", add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)
        commands[name] = lambda args, name=name: _run_delegated(name, args.args)

    p = sub.add_parser(
        "bench",
        help="run a benchmark (prints a table, then one JSON line of its figures)",
        description="Run a benchmark, or all of them. Each measures a reference in the same process "
        "and reports medians and ratios; the last line is a JSON object of its figures.",
    )
    p.add_argument("name", nargs="?", help="benchmark name (default: all): env, train, deploy, ik, zmp, mpc")
    p.add_argument("--quick", action="store_true", help="a short version (fewer repeats, shorter budgets)")
    g = p.add_argument_group("deploy benchmark")
    g.add_argument(
        "--robot",
        help="unitree://IFACE: also run the loop over Unitree SDK2's DDS topics (footfall bridge --sdk unitree) and "
        "report DDS / UDP tick compute from the same run",
    )
    g = p.add_argument_group("train benchmark")
    g.add_argument("--preset", default="quadruped-flat", help="preset to time (default: quadruped-flat)")
    g.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: 3; 1 with --quick)")
    g.add_argument("--minutes", type=float, help="wall budget per run (default: 15, biped 60, arm 10; 2 with --quick)")
    g.add_argument("--out", help="where runs, snapshots and the learning curve go (default: bench_out/train-PRESET)")
    g.add_argument("--no-reference", action="store_true", help="skip the Stable-Baselines3 PPO reference")
    commands["bench"] = _cmd_bench

    parser.set_defaults(_commands=commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in DELEGATED:  # its own parser takes every argument after the name, --help included
        return _run_delegated(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from footfall.robots.spec import RobotSpecError

    try:
        return args._commands[args.command](args)
    except (RobotSpecError, ValueError, FileNotFoundError) as e:
        print(f"footfall {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
