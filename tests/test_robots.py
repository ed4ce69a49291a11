"""Robot descriptions: they load, they stand, they match their published facts, bad input is refused clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest

from footfall.robots import RobotSpec, RobotSpecError, load_robot, robot_names
from footfall.robots.stand import stand

LEGGED = ["go1", "h1"]

# Published figures, typed here from the sources cited in each MJCF (not read from our files), so a drifting model
# fails. Ranges in rad, torques in N m, per joint in policy order of one leg / the arm.
PUBLISHED = {
    "go1": dict(  # Unitree go1 URDF
        ranges=[(-0.863, 0.863), (-0.686, 4.501), (-2.818, -0.888)] * 4, torques=[23.7, 23.7, 35.55] * 4, mass=12.74
    ),
    "h1": dict(  # Unitree h1.urdf
        ranges=[(-0.43, 0.43), (-0.43, 0.43), (-3.14, 2.53), (-0.26, 2.05), (-0.87, 0.52)] * 2,
        torques=[200, 200, 200, 300, 40] * 2,
        mass=59.34,
    ),
    "panda": dict(  # Franka FCI specifications; Gaz et al. 2019 masses
        ranges=[
            (-2.8973, 2.8973),
            (-1.7628, 1.7628),
            (-2.8973, 2.8973),
            (-3.0718, -0.0698),
            (-2.8973, 2.8973),
            (-0.0175, 3.7525),
            (-2.8973, 2.8973),
        ],
        torques=[87, 87, 87, 87, 12, 12, 12],
        mass=16.69,
    ),
}


def test_registry_lists_the_three_builtin_robots() -> None:
    """The registry holds a quadruped, a biped and an arm."""
    kinds = {load_robot(n).kind for n in robot_names()}
    assert {"go1", "h1", "panda"} <= set(robot_names())
    assert kinds == {"quadruped", "biped", "arm"}


@pytest.mark.parametrize("name", LEGGED)
def test_legged_robot_stands_ten_seconds_on_its_own_gains(name: str) -> None:
    """Holding home under its PD gains, the base stays within 10% of nominal height; only the feet touch the floor."""
    robot = load_robot(name)
    res = stand(robot, seconds=10.0)
    nominal = robot.nominal_base_height_m
    assert 0.9 * nominal <= res.base_height_min_m and res.base_height_max_m <= 1.1 * nominal, res
    assert res.non_foot_contacts == ()
    assert res.passed()


def test_arm_holds_home_within_a_milliradian() -> None:
    """The arm, commanded to home, stays within 1e-3 rad of it once settled."""
    res = stand(load_robot("panda"), seconds=10.0)
    assert res.max_joint_error_rad <= 1e-3


def test_reference_go1_stands(reference_go1_spec: Path) -> None:
    """The third-party Go1, loaded through its spec file, passes the same standing test."""
    robot = RobotSpec.from_file(reference_go1_spec)
    res = stand(robot, seconds=10.0)
    assert res.passed(), res


def test_reference_panda_loads_through_the_same_api(reference_panda_spec: Path) -> None:
    """The third-party Panda loads, with gains read from its affine actuators and its EE site located."""
    robot = RobotSpec.from_file(reference_panda_spec)
    assert robot.kp[0] == pytest.approx(4500) and robot.kd[0] == pytest.approx(450)
    model = robot.build_model()
    layout = robot.sensor_layout(model)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.sensordata[layout.ee_pos], data.site("attachment_site").xpos)


@pytest.mark.parametrize("name", ["go1", "h1", "panda"])
def test_mass_limits_and_ranges_match_published_figures(name: str) -> None:
    """Total mass within 5% of the cited figure; joint ranges and torque limits equal to the published ones."""
    robot = load_robot(name)
    pub = PUBLISHED[name]
    assert abs(robot.total_mass_kg - pub["mass"]) <= 0.05 * pub["mass"]
    np.testing.assert_allclose(robot.position_limits, pub["ranges"], atol=1e-4)
    np.testing.assert_allclose(robot.torque_limits, pub["torques"], atol=1e-6)


@pytest.mark.parametrize("name", LEGGED)
def test_sensors_read_upright_imu_and_loaded_feet(name: str) -> None:
    """At rest on home: the IMU quaternion (wxyz) is near upright, the accelerometer reads ~+g, every foot is loaded."""
    robot = load_robot(name)
    model = robot.build_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    data.ctrl[robot.actuator_ids(model)] = robot.default_pose
    for _ in range(int(1.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    mujoco.mj_forward(model, data)  # sensors are computed before integration in mj_step; refresh them
    lay = robot.sensor_layout(model)
    quat = data.sensordata[lay.imu_quat]
    assert abs(quat[0]) > 0.99  # w first: tilt below ~16 deg
    assert np.linalg.norm(data.sensordata[lay.imu_acc]) == pytest.approx(9.81, rel=0.05)
    assert np.all(data.sensordata[lay.foot_touch] > 0.1 * robot.total_mass_kg)
    np.testing.assert_allclose(data.sensordata[lay.joint_pos], data.qpos[robot.joint_qpos_adr(model)])


def test_missing_sensors_are_added_to_a_third_party_model(reference_go1_spec: Path) -> None:
    """The reference Go1 has no sensors; building it adds IMU, encoder and touch sensors footfall reads."""
    robot = RobotSpec.from_file(reference_go1_spec)
    raw = mujoco.MjModel.from_xml_path(str(robot.mjcf_path))
    assert raw.nsensor == 0
    model = robot.build_model()
    assert model.nsensor == 12 * 2 + 4 + 4
    assert robot.sensor_layout(model).foot_touch.shape == (4,)


# ---------------------------------------------------------------- bad input


def _copy_builtin(tmp_path: Path, name: str = "go1") -> Path:
    src = Path(load_robot(name).spec_path).parent
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_missing_mjcf_file_names_the_file(tmp_path: Path) -> None:
    d = _copy_builtin(tmp_path)
    (d / "go1.xml").unlink()
    with pytest.raises(RobotSpecError, match=r"MJCF file not found: .*go1\.xml"):
        RobotSpec.from_file(d / "spec.toml")


def test_malformed_xml_names_the_file(tmp_path: Path) -> None:
    d = _copy_builtin(tmp_path)
    text = (d / "go1.xml").read_text()
    (d / "go1.xml").write_text(text.replace("</worldbody>", "", 1))
    with pytest.raises(RobotSpecError, match=r"could not parse MJCF .*go1\.xml"):
        RobotSpec.from_file(d / "spec.toml")


def test_spec_naming_a_missing_joint_lists_valid_joints(tmp_path: Path) -> None:
    d = _copy_builtin(tmp_path)
    spec = d / "spec.toml"
    spec.write_text(spec.read_text().replace('"FL_calf_joint"', '"FL_knee_joint"'))
    with pytest.raises(RobotSpecError, match=r"'FL_knee_joint'.*Valid joints: \[.*'FL_calf_joint'"):
        RobotSpec.from_file(spec)


def test_keyframe_outside_joint_range_names_the_joint(tmp_path: Path) -> None:
    d = _copy_builtin(tmp_path)
    xml = d / "go1.xml"
    xml.write_text(xml.read_text().replace('ctrl="0 0.9 -1.8  0 0.9 -1.8', 'ctrl="0 0.9 -1.8  0 0.9 -0.5', 1))
    with pytest.raises(RobotSpecError, match=r"joint 'FL_calf_joint' at -0\.5000 rad \(ctrl\).*\[-2\.8180, -0\.8880\]"):
        RobotSpec.from_file(d / "spec.toml")


def test_unknown_robot_lists_builtin_robots() -> None:
    with pytest.raises(RobotSpecError, match=r"unknown robot 'spot'.*'go1'"):
        load_robot("spot")


def test_unknown_spec_field_is_refused(tmp_path: Path) -> None:
    d = _copy_builtin(tmp_path)
    spec = d / "spec.toml"
    spec.write_text(spec.read_text() + '\nimu_frame = "imu"\n')
    with pytest.raises(RobotSpecError, match=r"unknown field\(s\) \['imu_frame'\].*valid fields"):
        RobotSpec.from_file(spec)


def test_spec_gain_override_converts_actuators_to_pd(reference_go1_spec: Path, tmp_path: Path) -> None:
    """kp/kd in a spec file replace the model's gains in the compiled model."""
    text = reference_go1_spec.read_text().replace(
        "../../../shared", str(reference_go1_spec.parent.parent.parent.parent / "shared")
    )
    spec = tmp_path / "g.toml"
    spec.write_text(text + "\nkp = [35.0] * 12\n".replace("[35.0] * 12", str([35.0] * 12)) + f"kd = {[0.5] * 12}\n")
    robot = RobotSpec.from_file(spec)
    model = robot.build_model()
    ids = robot.actuator_ids(model)
    np.testing.assert_allclose(model.actuator_gainprm[ids, 0], 35.0)
    np.testing.assert_allclose(model.actuator_biasprm[ids, 2], -0.5)
