#!/usr/bin/env python3
r"""Writes OUT/qdq_conv/: a Conv wrapped in QuantizeLinear/DequantizeLinear pairs
the way PyTorch's quantization export lays them out, with onnxruntime's outputs
as golden data (the ONNX test-data layout that tests/models/qdq_test.cc reads).

    x -> Q(uint8, per-tensor, some inputs saturate) -> DQ --\
    W (int8, per-output-channel) -> DQ -> Conv -> Q(uint8) -> DQ -> y
    bias (int32, scale x_scale * w_scale) -> DQ --/

Outputs: the Conv's float output, the requantized uint8 tensor and y.
onnxruntime runs with graph optimizations off: otherwise it fuses the pattern
into QLinearConv, whose integer requantization is not what the ONNX graph
says. Ties: an output of the Conv within 1e-3 of a rounding boundary of the
output Q could round either way under float summation-order differences, so
the generator picks the first seed whose input has none. Deterministic.

    python tests/models/make_qdq_conv.py --out build/tests/models/data
"""

import argparse
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
X_SHAPE = (2, 3, 8, 8)
W_SHAPE = (4, 3, 3, 3)
X_SCALE, X_ZERO = np.float32(0.0213), np.uint8(128)
Y_SCALE, Y_ZERO = np.float32(0.0371), np.uint8(120)
TIE_MARGIN = 1e-3


def initializers(rng):
    w = rng.normal(0.0, 0.3, W_SHAPE).astype(np.float32)
    # Symmetric per-channel int8 weights: scale = max |w| / 127, zero point 0.
    w_scale = (np.abs(w).reshape(W_SHAPE[0], -1).max(axis=1) / 127).astype(np.float32)
    w_q = np.clip(np.rint(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    b_scale = (X_SCALE * w_scale).astype(np.float32)
    b_q = np.rint(rng.normal(0.0, 0.2, W_SHAPE[0]) / b_scale).astype(np.int32)
    arrays = {
        "x_scale": X_SCALE, "x_zero_point": X_ZERO,
        "w_q": w_q, "w_scale": w_scale, "w_zero_point": np.zeros(W_SHAPE[0], np.int8),
        "b_q": b_q, "b_scale": b_scale, "b_zero_point": np.zeros(W_SHAPE[0], np.int32),
        "y_scale": Y_SCALE, "y_zero_point": Y_ZERO,
    }
    return [numpy_helper.from_array(np.asarray(v), name) for name, v in arrays.items()]


def make_model(rng):
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero_point"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero_point"], ["x_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero_point"], ["w_dq"], axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zero_point"], ["b_dq"], axis=0),
        helper.make_node("Conv", ["x_dq", "w_dq", "b_dq"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["conv", "y_scale", "y_zero_point"], ["y_q"]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero_point"], ["y"]),
    ]
    out_shape = [X_SHAPE[0], W_SHAPE[0], X_SHAPE[2], X_SHAPE[3]]
    graph = helper.make_graph(
        nodes, "qdq_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, X_SHAPE)],
        [helper.make_tensor_value_info("conv", TensorProto.FLOAT, out_shape),
         helper.make_tensor_value_info("y_q", TensorProto.UINT8, out_shape),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializers(rng))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model


def run_onnxruntime(model, x):
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def near_tie(conv):
    fraction = np.abs(conv.astype(np.float64) / float(Y_SCALE)) % 1.0
    return bool(np.any(np.abs(fraction - 0.5) < TIE_MARGIN))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory that receives qdq_conv/")
    args = parser.parse_args(argv)
    model = make_model(np.random.default_rng(0))
    for seed in range(100):
        x = np.random.default_rng(seed + 1).uniform(-3.0, 3.0, X_SHAPE).astype(np.float32)
        outputs = run_onnxruntime(model, x)
        if not near_tie(outputs[0]):
            break
    else:
        raise SystemExit("qdq_conv: no input without near-ties in 100 seeds")
    case_dir = pathlib.Path(args.out) / "qdq_conv"
    set_dir = case_dir / "test_data_set_0"
    set_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(case_dir / "model.onnx"))
    (set_dir / "input_0.pb").write_bytes(numpy_helper.from_array(x, "x").SerializeToString())
    for i, (name, value) in enumerate(zip(["conv", "y_q", "y"], outputs)):
        tensor = numpy_helper.from_array(value, name)
        (set_dir / f"output_{i}.pb").write_bytes(tensor.SerializeToString())
    saturated = int(np.count_nonzero((outputs[1] == 0) | (outputs[1] == 255)))
    print(f"qdq_conv: seed {seed + 1}, {saturated} of {outputs[1].size} outputs saturated "
          f"-> {case_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
