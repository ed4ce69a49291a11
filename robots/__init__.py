"""Robot descriptions: RobotSpec (MJCF + spec file), the built-in robot registry, the policy contract."""

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    # Headless process: MuJoCo's default (GLFW) cannot open a context without a display, so offscreen rendering
    # (rollout videos) goes through EGL: a GPU driver's, or Mesa's software one. MuJoCo reads this variable when
    # it is first imported, which is below. Set MUJOCO_GL yourself (osmesa, egl, glfw) to choose otherwise.
    os.environ["MUJOCO_GL"] = "egl"

from footfall.robots.contract import ContractMismatchError, PolicyContract
from footfall.robots.registry import load_robot, robot_names
from footfall.robots.spec import RobotSpec, RobotSpecError, SensorLayout

__all__ = [
    "ContractMismatchError",
    "PolicyContract",
    "RobotSpec",
    "RobotSpecError",
    "SensorLayout",
    "load_robot",
    "robot_names",
]
