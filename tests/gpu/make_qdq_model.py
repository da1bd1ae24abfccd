"""Makes an explicitly quantized (Q/DQ) copy of a float ONNX model with
onnxruntime's static quantizer, as users export one: symmetric INT8
activations, per-channel symmetric INT8 weights, min-max on N(0, 1) batches.
Also writes one input batch and onnxruntime's output for it, the reference
tests/gpu/engine_int8_test.cc compares Anvil's INT8 engine with.

    python3 make_qdq_model.py --model resnet18.onnx --out DIR
"""
import argparse
import os

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(7)
    name = ort.InferenceSession(args.model).get_inputs()[0].name

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: rng.standard_normal((4, 3, 224, 224), dtype=np.float32)}
                                 for _ in range(2)])

        def get_next(self):
            return next(self.batches, None)

    prepared = os.path.join(args.out, "prepared.onnx")
    quant_pre_process(args.model, prepared, skip_symbolic_shape=True)
    qdq = os.path.join(args.out, "qdq.onnx")
    quantize_static(prepared, qdq, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    x = np.random.default_rng(11).standard_normal((args.batch, 3, 224, 224), dtype=np.float32)
    np.save(os.path.join(args.out, "input.npy"), x)
    np.save(os.path.join(args.out, "qdq_output.npy"),
            ort.InferenceSession(qdq).run(None, {name: x})[0])
    np.save(os.path.join(args.out, "float_output.npy"),
            ort.InferenceSession(args.model).run(None, {name: x})[0])
    print(f"wrote {qdq} and its onnxruntime outputs")


if __name__ == "__main__":
    main()
