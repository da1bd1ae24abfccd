#!/usr/bin/env python3
"""Writes golden test data for a model in the ONNX test-data layout:

    DIR/model.onnx
    DIR/test_data_set_0/input_0.pb, output_0.pb   (batch 1)
    DIR/test_data_set_1/input_0.pb, output_0.pb   (batch 3)

Inputs are seeded standard-normal tensors; outputs come from onnxruntime on
the CPU with every graph optimization off and one thread, a plain FP32
reference. Each .pb is a serialized TensorProto named after the graph input
or output. The model's inputs must be float32 with at most a symbolic batch
(first) dimension.

    python python/make_golden.py resnet18.onnx -d build/models/resnet18
"""

import argparse
import pathlib
import re
import shutil
import sys

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, numpy_helper

BATCH_SIZES = (1, 3)  # test_data_set_0, test_data_set_1


def input_shapes(model, batch):
    """Concrete shapes of the graph inputs, the batch dim set to `batch`."""
    initializers = {t.name for t in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != TensorProto.FLOAT:
            raise SystemExit(f"input {value.name}: only float32 inputs are supported")
        shape = []
        for i, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                shape.append(dim.dim_value)
            elif i == 0:
                shape.append(batch)
            else:
                raise SystemExit(f"input {value.name}: only dimension 0 (batch) may be symbolic")
        shapes[value.name] = shape
    return shapes


def reference_session(model_path):
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1  # the same sums in the same order on every run
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(model_path), options, providers=["CPUExecutionProvider"]
    )


def write_tensor(path, array, name):
    path.write_bytes(numpy_helper.from_array(array, name).SerializeToString())


def write_test_data(model_path, out_dir, seed=0):
    """Copies the model to out_dir/model.onnx and writes one data set per
    batch size; returns the output arrays of each set."""
    model_path, out_dir = pathlib.Path(model_path), pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.onnx"
    if not target.exists() or not target.samefile(model_path):
        shutil.copyfile(model_path, target)
    # Stale sets from an earlier run would be compared too.
    for old in out_dir.iterdir():
        if old.is_dir() and re.fullmatch(r"test_data_set_\d+", old.name):
            shutil.rmtree(old)

    model = onnx.load(str(target), load_external_data=False)
    session = reference_session(target)
    output_names = [o.name for o in session.get_outputs()]
    rng = np.random.default_rng(seed)
    results = []
    for index, batch in enumerate(BATCH_SIZES):
        set_dir = out_dir / f"test_data_set_{index}"
        set_dir.mkdir()
        shapes = input_shapes(model, batch)
        feeds = {name: rng.standard_normal(shape, np.float32) for name, shape in shapes.items()}
        outputs = session.run(output_names, feeds)
        for i, (name, array) in enumerate(feeds.items()):
            write_tensor(set_dir / f"input_{i}.pb", array, name)
        for i, (name, array) in enumerate(zip(output_names, outputs)):
            if not np.all(np.isfinite(array)) or np.ptp(array) == 0:
                raise SystemExit(f"{model_path}: output {name} is non-finite or constant")
            write_tensor(set_dir / f"output_{i}.pb", array, name)
        results.append(outputs)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx model")
    parser.add_argument("-d", "--dir", help="where to write the layout (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model_path = pathlib.Path(args.model)
    out_dir = pathlib.Path(args.dir) if args.dir else model_path.parent
    results = write_test_data(model_path, out_dir, args.seed)
    for index, (batch, outputs) in enumerate(zip(BATCH_SIZES, results)):
        top1 = outputs[0].reshape(batch, -1).argmax(axis=1).tolist()
        print(f"{out_dir}/test_data_set_{index}: batch {batch}, top-1 {top1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
