"""TensorRT engine building: optimisation profiles, the JSON sidecar, the builder (TensorRT imported lazily)."""
