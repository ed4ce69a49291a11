"""`footfall bench ik`: arm IK on random reachable targets, footfall's solver against mink's.

For each arm (footfall's panda; the third-party Panda in ../shared/reference-models/ when it is there): N targets
(1000; 100 with --quick) from forward kinematics of configurations drawn uniformly inside the joint ranges, so each
is reachable. Both solvers start every target from the model's home keyframe, get the same attempt budget
(`IKConfig.max_iters` iterations per attempt, `IKConfig.restarts` restarts from the same seeded random
configurations) and the same success test (1 mm and 0.01 rad), in the same process, interleaved ten targets at a time.

Reference: mink (`mink.solve_ik` with daqp, a FrameTask with position and orientation cost 1 and LM damping 1e-3,
a ConfigurationLimit, dt = 1; each iteration integrates the returned velocity). Of the settings tried on 100
targets of the reference Panda (task LM damping 0, 1e-3, 1; dt 1 and 0.5), LM damping 1e-3 with dt 1 was the
fastest per solve and LM damping 1 the most successful without restarts; with restarts both reach the targets.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from footfall.benchmarks.common import machine, table

REFERENCE_PANDA = Path(__file__).resolve().parents[2] / "shared" / "reference-models" / "franka_panda.xml"


def arms() -> list[tuple[str, mujoco.MjModel, str, list[str]]]:
    from footfall.robots import load_robot

    spec = load_robot("panda")
    out = [("footfall panda", spec.build_mjspec().compile(), spec.end_effector_site, list(spec.joint_names))]
    if REFERENCE_PANDA.is_file():
        model = mujoco.MjModel.from_xml_path(str(REFERENCE_PANDA))
        out.append(("reference Panda", model, "attachment_site", [f"joint{i}" for i in range(1, 8)]))
    else:
        print(f"(reference Panda not found at {REFERENCE_PANDA}: measuring footfall's panda only)")
    return out


def home(model: mujoco.MjModel, qadr: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return model.key_qpos[0][qadr].copy() if model.nkey else 0.5 * (lo + hi)


def run_mink(model, site, ik, targets, q0, restart_qs) -> dict[str, Any]:  # noqa: ANN001
    import mink

    cfg = mink.Configuration(model)
    task = mink.FrameTask(site, "site", position_cost=1.0, orientation_cost=1.0, lm_damping=1e-3)
    limits = [mink.ConfigurationLimit(model)]
    c = ik.cfg
    times, ok, viol = [], 0, 0
    full = model.key_qpos[0].copy() if model.nkey else np.zeros(model.nq)
    for (p, r), restarts in zip(targets, restart_qs):
        t0 = time.perf_counter()
        task.set_target(mink.SE3.from_rotation_and_translation(mink.SO3(r), p))
        success = False
        for attempt in range(c.restarts + 1):
            full[ik.qadr] = q0 if attempt == 0 else restarts[attempt - 1]
            cfg.update(full)
            for _ in range(c.max_iters):
                err = task.compute_error(cfg)
                if np.linalg.norm(err[:3]) <= c.pos_tol_m and np.linalg.norm(err[3:]) <= c.rot_tol_rad:
                    success = True
                    break
                try:
                    v = mink.solve_ik(cfg, [task], 1.0, "daqp", damping=1e-12, limits=limits)
                except mink.exceptions.NoSolutionFound:
                    break
                cfg.integrate_inplace(v, 1.0)
            if success:
                break
        times.append(time.perf_counter() - t0)
        q = cfg.q[ik.qadr]
        ok += success
        viol += int(np.any(q < ik.lo - 1e-9) or np.any(q > ik.hi + 1e-9))
    return {"success": ok, "violations": viol, "times": np.array(times)}


def run_ours(ik, targets, q0, restart_qs) -> dict[str, Any]:  # noqa: ANN001
    times, ok, viol, iters, attempts = [], 0, 0, [], []
    for (p, r), restarts in zip(targets, restart_qs):
        it = iter(restarts)
        ik.rng = _Replay(it)  # restarts from the same configurations mink gets
        t0 = time.perf_counter()
        res = ik.solve(p, r, q0)
        times.append(time.perf_counter() - t0)
        ok += res.success
        viol += int(np.any(res.q < ik.lo - 1e-9) or np.any(res.q > ik.hi + 1e-9))
        iters.append(res.iterations)
        attempts.append(res.attempts)
    return {"success": ok, "violations": viol, "times": np.array(times), "iters": iters, "attempts": attempts}


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in parts[0]:
        vals = [p[k] for p in parts]
        out[k] = (
            np.concatenate(vals)
            if isinstance(vals[0], np.ndarray)
            else (sum(vals, []) if isinstance(vals[0], list) else sum(vals))
        )
    return out


class _Replay:
    """Stands in for the solver's Generator: hands out pre-drawn restart configurations."""

    def __init__(self, it):  # noqa: ANN001
        self.it = it

    def uniform(self, lo, hi):  # noqa: ANN001, ANN201
        return next(self.it)


def run(quick: bool = False) -> dict[str, Any]:
    from footfall.deploy.controllers.ik import IKSolver

    n = 100 if quick else 1000
    rows, per = [], {}
    for name, model, site, joints in arms():
        ik = IKSolver(model, site, joints)
        rng = np.random.default_rng(0)
        P, R, _ = ik.random_reachable(n, rng)
        restart_qs = rng.uniform(ik.lo, ik.hi, size=(n, ik.cfg.restarts, ik.num_joints))
        q0 = home(model, ik.qadr, ik.lo, ik.hi)
        targets = list(zip(P, R))
        # Interleaved in chunks of 10 targets, so that load on this shared machine falls on both alike.
        parts = [
            (
                run_ours(ik, targets[i : i + 10], q0, restart_qs[i : i + 10]),
                run_mink(model, site, ik, targets[i : i + 10], q0, restart_qs[i : i + 10]),
            )
            for i in range(0, n, 10)
        ]
        ours, ref = _merge([a for a, _ in parts]), _merge([b for _, b in parts])
        per[name] = {
            "targets": n,
            "success_rate": ours["success"] / n,
            "limit_violations": ours["violations"],
            "median_solve_ms": float(np.median(ours["times"]) * 1e3),
            "p90_solve_ms": float(np.percentile(ours["times"], 90) * 1e3),
            "median_iterations": float(np.median(ours["iters"])),
            "restarted_share": float(np.mean(np.array(ours["attempts"]) > 1)),
            "mink_success_rate": ref["success"] / n,
            "mink_limit_violations": ref["violations"],
            "mink_median_solve_ms": float(np.median(ref["times"]) * 1e3),
            "mink_p90_solve_ms": float(np.percentile(ref["times"], 90) * 1e3),
        }
        per[name]["time_ratio_ours_to_mink"] = per[name]["median_solve_ms"] / per[name]["mink_median_solve_ms"]
        rows.append((name, per[name], ours, ref))
    all_ours = np.concatenate([r[2]["times"] for r in rows])
    all_mink = np.concatenate([r[3]["times"] for r in rows])
    return {
        **machine(),
        "targets_per_arm": n,
        "success_rate": min(p["success_rate"] for p in per.values()),
        "limit_violations": sum(p["limit_violations"] for p in per.values()),
        "median_solve_ms": float(np.median(all_ours) * 1e3),
        "mink_median_solve_ms": float(np.median(all_mink) * 1e3),
        "time_ratio_ours_to_mink": float(np.median(all_ours) / np.median(all_mink)),
        "mink_success_rate": min(p["mink_success_rate"] for p in per.values()),
        "per_arm": per,
        "settings": {
            "tolerance": "1 mm, 0.01 rad",
            "ours": "damped least squares + box QP (qpsolvers/daqp), lambda = 1e-3 |e|^2 + 1e-6, step <= 0.5 rad",
            "mink": "solve_ik(daqp), FrameTask(cost 1, 1, lm_damping 1e-3), ConfigurationLimit, dt 1",
            "budget": "60 iterations per attempt, 20 restarts from the same seeded configurations, start at home",
        },
    }


def main(quick: bool = False) -> dict[str, Any]:
    r = run(quick)
    print(
        f"IK on {r['targets_per_arm']} random reachable targets per arm (1 mm, 0.01 rad), start at home, "
        f"same restarts for both ({r['machine']}, python {r['python']}, mujoco {r['mujoco']})"
    )
    rows = []
    for name, p in r["per_arm"].items():
        rows.append(
            (
                name,
                f"{p['success_rate']:.1%}",
                str(p["limit_violations"]),
                f"{p['median_solve_ms']:.3f}",
                f"{p['p90_solve_ms']:.2f}",
                f"{p['mink_success_rate']:.1%}",
                f"{p['mink_median_solve_ms']:.3f}",
                f"{p['time_ratio_ours_to_mink']:.2f}",
            )
        )
    print(
        table(
            ("arm", "success", "limit viol.", "median ms", "p90 ms", "mink success", "mink median ms", "ratio"),
            rows,
        )
    )
    print("ratio = our median solve time / mink's (below 1: ours is faster). Targets: >= 99% success, 0 violations.")
    print(json.dumps(r))
    return r
