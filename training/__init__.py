"""PPO, SAC, the training runner and ONNX export (issue: training). Not yet implemented."""
