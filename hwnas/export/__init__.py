"""`hwnas-export`: the Pareto models of a run as verified ONNX (and TensorRT engines), with a manifest."""
