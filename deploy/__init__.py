"""The deploy runtime: ONNX policy, safety layer, robot interfaces; imports neither torch nor gymnasium."""
