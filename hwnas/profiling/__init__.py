"""Device profiling: runners that time ONNX models, latency tables, the latency model."""
