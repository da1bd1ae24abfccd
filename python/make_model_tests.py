#!/usr/bin/env python3
"""Generates the whole-model test cases: for each model, OUT/<model>/ holds
model.onnx and its golden data sets (make_models.py + make_golden.py).

A case is regenerated only when its inputs changed (these scripts, the
model arguments, the onnx/onnxruntime/numpy versions): the stamp file
OUT/<model>/.stamp records them. Generation is deterministic, so a rerun
writes the same bytes.

    python python/make_model_tests.py --out build/tests/models/data
"""

import argparse
import hashlib
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime

import make_golden
import make_models

SCRIPTS = ("make_models.py", "calibration.py", "make_golden.py", "make_model_tests.py")


def stamp_for(model, classes, seed):
    digest = hashlib.sha256()
    here = pathlib.Path(__file__).resolve().parent
    for script in SCRIPTS:
        digest.update((here / script).read_bytes())
    versions = f"onnx {onnx.__version__} ort {onnxruntime.__version__} numpy {np.__version__}"
    digest.update(f"{model} {classes} {seed} {versions}".encode())
    return digest.hexdigest()


def generate(out_dir, model, classes, seed):
    case_dir = out_dir / model
    stamp_file = case_dir / ".stamp"
    stamp = stamp_for(model, classes, seed)
    done = stamp_file.exists() and stamp_file.read_text() == stamp
    if done and (case_dir / "model.onnx").exists():
        print(f"{model}: up to date in {case_dir}")
        return
    case_dir.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)  # a half-written case must not look done
    proto, parameters = make_models.make_model(model, classes, seed)
    make_models.validate(proto, classes)
    expected = make_models.TORCHVISION_PARAMETERS[model]
    if classes == 1000 and parameters != expected:
        raise SystemExit(f"{model}: {parameters:,} parameters, torchvision's has {expected:,}")
    onnx.save(proto, str(case_dir / "model.onnx"))
    make_golden.write_test_data(case_dir / "model.onnx", case_dir, seed)
    stamp_file.write_text(stamp)
    print(f"{model}: {parameters:,} parameters, {len(proto.graph.node)} nodes -> {case_dir}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory that receives one folder per model")
    names = sorted(make_models.BUILDERS)
    parser.add_argument("--models", nargs="+", default=names, choices=names)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    for model in args.models:
        generate(out_dir, model, args.classes, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
