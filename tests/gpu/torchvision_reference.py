"""Reference data of the torchvision accuracy test (tests/gpu/torchvision_accuracy_test.cc).

    python3 tests/gpu/torchvision_reference.py OUT_DIR [--digits DIR]

For each of resnet18, resnet50 and mobilenet_v2 it writes into OUT_DIR:
  <model>.onnx                    exported as bench/export_torchvision.py does
                                  (opset 17, "input" -> "output", dynamic batch "N")
  <model>_output_512x1000.bin     PyTorch eager FP32 logits on the GPU, TF32 off
  <model>_fp16_output_512x1000.bin  PyTorch's own FP16 (channels-last) logits
and once, shared by all models:
  inputs_512x3x224x224.bin        the 512 NCHW images (seeded standard normal)
The .bin files are raw little-endian float32, row-major, shape in the name.

With --digits DIR (python/make_digits.py's folder), each model is also
trained on the digits train split (python/train_digits.py's recipe: Adam,
8 epochs or 60 s), so that its weights are those of a real classifier:
  <model>_digits.onnx                         10 classes, exported the same way
  <model>_digits_on_noise_output_512x10.bin   its FP32 logits on the 512 inputs above
  <model>_digits_on_digits_output_512x10.bin  its FP32 logits on the digits inputs
  digits_inputs_512x3x224x224.bin             the 360 test images, then 152 train
                                              images (seeded), upscaled and
                                              normalized as train_digits.py does
Work whose files exist is skipped; files are written under a temporary name
and renamed, so an interrupted run leaves no half-written file behind.

There is no internet on the GPU machine, hence weights=None. A net with random
weights and fresh BatchNorm statistics (mean 0, var 1) has activations that
grow layer by layer and BatchNorms that are near identities; a few training-
mode passes with momentum=None give every BatchNorm the cumulative average of
its real batch statistics, so BN folding has real work to do and activations
are as well scaled as in a trained net. Their top-1 margins are still tiny
(1000 random classifiers), so FP16 alone flips some of them; the digits-
trained models are the realistic case."""
import argparse
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import train_digits  # noqa: E402  (python/train_digits.py: the training recipe)

MODELS = ("resnet18", "resnet50", "mobilenet_v2")
SAMPLES = 512
CLASSES = 1000
BATCH = 64
CALIBRATION_PASSES = 8
CALIBRATION_BATCH = 16
INPUT_SEED = 1234
CALIBRATION_SEED = 99
INPUTS_FILE = f"inputs_{SAMPLES}x3x224x224.bin"
DIGITS_INPUTS_FILE = f"digits_inputs_{SAMPLES}x3x224x224.bin"
DIGITS_CLASSES = 10
DIGITS_SEED = 5


def fp16_output_file(model):
    return f"{model}_fp16_output_{SAMPLES}x{CLASSES}.bin"


def output_file(model):
    return f"{model}_output_{SAMPLES}x{CLASSES}.bin"


def disable_tf32():
    """FP32 convs and matmuls in full IEEE precision: the reference for FP32 plans."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        # torch >= 2.9: the new API (mixing it with allow_tf32 is an error).
        for backend in (torch.backends, matmul, torch.backends.cudnn,
                        getattr(torch.backends.cudnn, "conv", None)):
            if backend is not None and hasattr(backend, "fp32_precision"):
                backend.fp32_precision = "ieee"
        state = f"matmul {matmul.fp32_precision}, cudnn conv {torch.backends.cudnn.conv.fp32_precision}"
    else:
        matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        state = f"matmul allow_tf32 {matmul.allow_tf32}, cudnn allow_tf32 {torch.backends.cudnn.allow_tf32}"
    print(f"TF32 off ({state})", flush=True)


def write_raw(path, array):
    tmp = path + ".tmp"
    np.ascontiguousarray(array, dtype="<f4").tofile(tmp)
    os.replace(tmp, path)


def read_raw(path, shape):
    data = np.fromfile(path, dtype="<f4")
    if data.size != int(np.prod(shape)):
        sys.exit(f"{path}: {data.size} floats, expected shape {shape}")
    return data.reshape(shape)


def make_inputs(out_dir):
    path = os.path.join(out_dir, INPUTS_FILE)
    if os.path.exists(path):
        return read_raw(path, (SAMPLES, 3, 224, 224))
    generator = torch.Generator().manual_seed(INPUT_SEED)
    inputs = torch.randn(SAMPLES, 3, 224, 224, generator=generator).numpy()
    write_raw(path, inputs)
    print(f"wrote {path}", flush=True)
    return inputs


def calibrated_model(name, device):
    """The architecture with seeded weights and BatchNorm statistics of real batches."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).to(device)
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in batch_norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the passes
    generator = torch.Generator(device=device).manual_seed(CALIBRATION_SEED)
    model.train()
    with torch.no_grad():
        for _ in range(CALIBRATION_PASSES):
            model(torch.randn(CALIBRATION_BATCH, 3, 224, 224, generator=generator, device=device))
    model.eval()
    return model, len(batch_norms)


def export(model, path):
    tmp = path + ".tmp.onnx"
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, tmp, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                      opset_version=17, dynamo=False)
    os.replace(tmp, path)


def op_counts(path):
    """The exported graph's op types: the exporter folds eval-mode BatchNorm into
    the convs itself, so whether any BatchNormalization is left is worth seeing."""
    try:
        import onnx
    except ImportError:
        return "onnx not installed: op counts unknown"
    counts = {}
    for node in onnx.load(path).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))


def eager_outputs(model, inputs, device):
    with torch.inference_mode():
        return np.concatenate([
            model(torch.from_numpy(inputs[start:start + BATCH]).to(device)).float().cpu().numpy()
            for start in range(0, SAMPLES, BATCH)])


def describe(name, outputs):
    top = np.sort(outputs, axis=1)
    margin = top[:, -1] - top[:, -2]
    classes = np.unique(outputs.argmax(axis=1)).size
    print(f"{name}: output range max|y| {np.abs(outputs).max():.4g}, std {outputs.std():.4g}; "
          f"top-1 margin median {np.median(margin):.4g}, min {margin.min():.3g}; "
          f"{classes} distinct top-1 classes over {SAMPLES} inputs", flush=True)


def cpu_agreement(name, model, inputs, outputs):
    """How far the GPU reference itself is from CPU FP32 eager (cuDNN's algorithms,
    Winograd included, round differently): the noise floor of the FP32 check."""
    with torch.inference_mode():
        cpu = model(torch.from_numpy(inputs[:BATCH])).numpy()
    gpu = outputs[:BATCH]
    rel = np.abs(cpu - gpu).max() / np.abs(gpu).max()
    print(f"{name}: GPU vs CPU eager FP32 on {BATCH} inputs: relative difference {rel:.3g}",
          flush=True)


def fp16_agreement(name, model, inputs, outputs, device):
    """PyTorch's own FP16 (channels-last, as bench/pytorch_peers.py runs it)
    against its FP32: what FP16 costs this model before Anvil is involved.
    Converts `model` in place, so call it last."""
    model = model.to(device).half().to(memory_format=torch.channels_last)
    half = np.empty_like(outputs)
    with torch.inference_mode():
        for start in range(0, SAMPLES, BATCH):
            x = torch.from_numpy(inputs[start:start + BATCH]).to(device).half()
            half[start:start + BATCH] = model(x.to(memory_format=torch.channels_last)).float().cpu()
    rel = np.abs(half - outputs).max() / np.abs(outputs).max()
    agree = int((half.argmax(axis=1) == outputs.argmax(axis=1)).sum())
    print(f"{name}: PyTorch eager FP16 vs its FP32: relative error {rel:.3g}, "
          f"top-1 agreement {agree}/{SAMPLES}", flush=True)
    return half


def make_model(name, out_dir, inputs, device):
    onnx_path = os.path.join(out_dir, f"{name}.onnx")
    out_path = os.path.join(out_dir, output_file(name))
    fp16_path = os.path.join(out_dir, fp16_output_file(name))
    # The files are one unit: the outputs must come from the very weights exported.
    if all(os.path.exists(p) for p in (onnx_path, out_path, fp16_path)):
        print(f"{name}: up to date", flush=True)
        return
    model, bn_count = calibrated_model(name, device)
    export(model.cpu(), onnx_path)
    print(f"{name}: {bn_count} BatchNorms calibrated, exported {onnx_path} ({op_counts(onnx_path)})",
          flush=True)
    outputs = eager_outputs(model.to(device), inputs, device)
    if not np.isfinite(outputs).all():
        sys.exit(f"{name}: non-finite eager outputs")
    write_raw(out_path, outputs)
    describe(name, outputs)
    cpu_agreement(name, model.cpu(), inputs, outputs)
    write_raw(os.path.join(out_dir, fp16_output_file(name)),
              fp16_agreement(name, model, inputs, outputs, device))
    print(f"{name}: wrote {out_path}", flush=True)


def digits_output_file(model, inputs):
    return f"{model}_digits_on_{inputs}_output_{SAMPLES}x{DIGITS_CLASSES}.bin"


def make_digits_inputs(out_dir, digits_dir, device):
    """All test images, then train images drawn with a fixed seed, as the
    network sees them (train_digits.upscale_digits)."""
    path = os.path.join(out_dir, DIGITS_INPUTS_FILE)
    if os.path.exists(path):
        return read_raw(path, (SAMPLES, 3, 224, 224))
    test_x, _ = train_digits.load_split(digits_dir, "test")
    train_x, _ = train_digits.load_split(digits_dir, "train")
    extra = np.random.default_rng(DIGITS_SEED).choice(train_x.shape[0], SAMPLES - test_x.shape[0],
                                                      replace=False)
    gray = np.concatenate([test_x, train_x[np.sort(extra)]])
    inputs = train_digits.upscale_digits(torch.from_numpy(gray).to(device)).cpu().numpy()
    write_raw(path, inputs)
    print(f"wrote {path} ({test_x.shape[0]} test and {extra.size} train images)", flush=True)
    return inputs


def make_digits_model(name, out_dir, digits_dir, noise_inputs, digits_inputs, device):
    """`name` trained on the digits train split, exported, with its FP32
    logits on both input sets."""
    onnx_path = os.path.join(out_dir, f"{name}_digits.onnx")
    out_paths = {inputs: os.path.join(out_dir, digits_output_file(name, inputs))
                 for inputs in ("noise", "digits")}
    if all(os.path.exists(p) for p in [onnx_path, *out_paths.values()]):
        print(f"{name}_digits: up to date", flush=True)
        return
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=DIGITS_CLASSES).to(device)
    images, labels = (torch.from_numpy(a).to(device)
                      for a in train_digits.load_split(digits_dir, "train"))
    recipe = argparse.Namespace(epochs=8, max_seconds=60.0, batch=64, lr=1e-3, seed=0)
    train_digits.set_tf32(True)
    epochs, steps, seconds = train_digits.train(model, images, labels, recipe, device)
    disable_tf32()
    model.eval()
    test_x, test_y = (torch.from_numpy(a).to(device)
                      for a in train_digits.load_split(digits_dir, "test"))
    correct = train_digits.top1(model, test_x, test_y, recipe.batch)
    print(f"{name}_digits: trained {epochs} epoch(s), {steps} steps, {seconds:.1f} s; "
          f"PyTorch FP32 top-1 on the test split {correct}/{test_y.numel()}", flush=True)
    export(model.cpu(), onnx_path)
    model.to(device)
    for inputs, array in (("noise", noise_inputs), ("digits", digits_inputs)):
        outputs = eager_outputs(model, array, device)
        if not np.isfinite(outputs).all():
            sys.exit(f"{name}_digits: non-finite eager outputs on the {inputs} inputs")
        write_raw(out_paths[inputs], outputs)
        describe(f"{name}_digits on {inputs}", outputs)
    # Last: converts the model to FP16 in place.
    fp16_agreement(f"{name}_digits on digits", model, digits_inputs,
                   read_raw(out_paths["digits"], (SAMPLES, DIGITS_CLASSES)), device)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--digits", help="python/make_digits.py's folder: also train on it")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA GPU: the reference is PyTorch eager on the GPU")
    os.makedirs(args.out_dir, exist_ok=True)
    device = torch.device("cuda")
    disable_tf32()
    torch.backends.cudnn.benchmark = False
    inputs = make_inputs(args.out_dir)
    for name in args.models:
        make_model(name, args.out_dir, inputs, device)
    if args.digits is None:
        return
    if not os.path.exists(os.path.join(args.digits, "train_images.npy")):
        print(f"no digits dataset at {args.digits}: the trained-model cases skip (make it with "
              f"python/make_digits.py and carry it to this machine)", flush=True)
        return
    digits_inputs = make_digits_inputs(args.out_dir, args.digits, device)
    for name in args.models:
        make_digits_model(name, args.out_dir, args.digits, inputs, digits_inputs, device)


if __name__ == "__main__":
    main()
