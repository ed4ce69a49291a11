"""Robot descriptions: RobotSpec (MJCF + spec file), the built-in robot registry, the policy contract."""

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
