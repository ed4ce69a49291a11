"""Classical controllers behind the same interface as an exported policy: `controller(reading, command) ->
JointCommand`, an optional `reset(reading)` when the runtime enters RUN, and `control_dt_s`, the period the runtime
should tick them at. They run in the deploy loop, under the same safety layer, on the same robots.

- ik.py   arm: differential IK on MuJoCo Jacobians as a QP (qpsolvers + daqp), with restarts; a reaching controller
- zmp.py  biped: footstep planner, cart-table preview control (Kajita 2003), swing trajectories, leg IK
- mpc.py  quadruped: convex MPC on the single-rigid-body model (Di Carlo et al. 2018), trot scheduler, J^T f
"""
