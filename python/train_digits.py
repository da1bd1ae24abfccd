"""Trains a torchvision classifier on the digits dataset folder that
python/make_digits.py writes, reports PyTorch's FP32 top-1 on the test split
and exports the model to ONNX for `anvil eval`:

    python3 python/train_digits.py --dataset build/digits --model resnet18 \\
        -o resnet18_digits.onnx --json pytorch.json

Runs on the GPU machine (torch + torchvision, no internet, maybe no
scikit-learn): it reads only the .npy files. Training budget: --epochs passes
over the train split or --max-seconds, whichever ends first; batch 64, Adam,
fixed seeds. Images are enlarged exactly as Anvil does (src/io/digits_dataset.h):
every 8x8 pixel becomes a 28x28 block (nearest neighbour), gray copied to
R, G and B, then (pixel / 255 - mean) / std with ImageNet's mean and std.
The export is bench/export_torchvision.py's: opset 17, input "input", output
"output", dynamic batch."""
import argparse
import json
import os
import time

import numpy as np
import torch
import torchvision

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
INPUT_SIDE = 224


def load_split(folder, split):
    images = np.load(os.path.join(folder, f"{split}_images.npy"))
    labels = np.load(os.path.join(folder, f"{split}_labels.npy"))
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise SystemExit(f"{folder}/{split}_images.npy: expected uint8 [N, S, S], "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
        raise SystemExit(f"{folder}/{split}_labels.npy: expected int64 [{images.shape[0]}], "
                         f"got {labels.dtype} {labels.shape}")
    return images, labels


def upscale_digits(gray, side=INPUT_SIDE):
    """uint8 [N, S, S] -> float [N, 3, side, side], ImageNet-normalized.
    Nearest neighbour by whole-block repetition, the same pixels as
    io::upscale_digit in C++."""
    factor = side // gray.shape[1]
    assert factor * gray.shape[1] == side, "the input side must be a multiple of the image side"
    x = gray.float().repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)
    x = x.unsqueeze(1).expand(-1, 3, -1, -1) / 255.0
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def set_tf32(enabled):
    """TF32 on or off for convs and matmuls: PyTorch 2.9's fp32_precision
    where it exists (mixing it with the older allow_tf32 flags is refused),
    else allow_tf32."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        precision = "tf32" if enabled else "ieee"
        torch.backends.cudnn.conv.fp32_precision = precision
        torch.backends.cuda.matmul.fp32_precision = precision
    else:
        torch.backends.cudnn.allow_tf32 = enabled
        torch.backends.cuda.matmul.allow_tf32 = enabled


def train(model, images, labels, args, device):
    """Returns (epochs run, steps, seconds)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    n = images.shape[0]
    model.train()
    torch.cuda.synchronize()
    start = time.perf_counter()
    steps = 0
    epoch = 0
    while epoch < args.epochs and time.perf_counter() - start < args.max_seconds:
        order = torch.randperm(n, generator=generator).to(device)
        for first in range(0, n, args.batch):
            index = order[first:first + args.batch]
            x = upscale_digits(images[index])
            loss = loss_fn(model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        epoch += 1
        torch.cuda.synchronize()
        print(f"epoch {epoch}: loss {loss.item():.4f} at {time.perf_counter() - start:.1f} s",
              flush=True)
    return epoch, steps, time.perf_counter() - start


@torch.no_grad()
def top1(model, images, labels, batch):
    model.eval()
    correct = 0
    for first in range(0, images.shape[0], batch):
        logits = model(upscale_digits(images[first:first + batch]))
        correct += int((logits.argmax(dim=1) == labels[first:first + batch]).sum())
    return correct


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="build/digits", help="make_digits.py's folder")
    parser.add_argument("--model", default="resnet18",
                        choices=["resnet18", "resnet50", "mobilenet_v2"])
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")
    parser.add_argument("--json", help="write PyTorch's top-1 and the training facts here")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()

    if not torch.cuda.is_available():
        raise SystemExit("train_digits.py trains on CUDA and none is available")
    device = torch.device("cuda")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    train_x, train_y = load_split(args.dataset, "train")
    test_x, test_y = load_split(args.dataset, "test")
    classes = int(max(train_y.max(), test_y.max())) + 1

    model = getattr(torchvision.models, args.model)(weights=None, num_classes=classes).to(device)
    # TF32 speeds training up; scoring below turns it off so the reported
    # top-1 is true FP32, the number Anvil's FP32 plan (TF32 off) is held to.
    set_tf32(True)
    on_gpu = [torch.from_numpy(a).to(device) for a in (train_x, train_y, test_x, test_y)]
    epochs, steps, seconds = train(model, on_gpu[0], on_gpu[1], args, device)
    print(f"trained {args.model} for {epochs} epoch(s), {steps} steps, in {seconds:.1f} s")

    set_tf32(False)
    correct = top1(model, on_gpu[2], on_gpu[3], args.batch)
    total = int(test_y.shape[0])
    print(f"PyTorch FP32 top-1 on the test split: {100.0 * correct / total:.2f}% "
          f"({correct}/{total})")

    model = model.cpu().eval()
    x = torch.randn(1, 3, INPUT_SIDE, INPUT_SIDE)
    torch.onnx.export(model, x, args.output, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                      opset_version=args.opset, dynamo=False)
    print(f"exported {args.model} to {args.output}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "pytorch_fp32_top1_percent": 100.0 * correct / total,
                       "correct": correct, "total": total, "epochs": epochs, "steps": steps,
                       "train_seconds": seconds, "batch": args.batch, "lr": args.lr,
                       "seed": args.seed}, f, indent=2)


if __name__ == "__main__":
    main()
