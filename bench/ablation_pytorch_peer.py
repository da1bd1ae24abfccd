"""The PyTorch peer of `anvil bench --ablation`: the same job (10 batches of
128 x 3 x 224 x 224 FP32 random data on the host, the last 3 timed, wall clock
from the first timed upload to the last result processed on the host) done the
way the PyTorch performance guides advise: pinned memory, non_blocking copies
on a copy stream overlapping the previous batch's compute, FP16 channels-last,
inference mode; softmax + argmax + a line per image into a string sink.

    python3 bench/ablation_pytorch_peer.py --model resnet18

torchvision's architecture with seeded random weights, as
bench/export_torchvision.py exports it."""
import argparse
import time

import torch
import torchvision


def process(logits, sink):
    # The guide's print_result: softmax, top class, a line per image.
    probs = torch.softmax(logits.float(), dim=1)
    p, top = probs.max(dim=1)
    for i, (c, q) in enumerate(zip(top.tolist(), p.tolist())):
        sink.append(f"image {i}: class {c} (p={q:.4f})")


def run(model, batches, order, copy_stream, compute_stream):
    """Runs the batches in `order`; returns when the last result is processed."""
    sink = []
    device_in = [None, None]
    uploaded = [torch.cuda.Event(), torch.cuda.Event()]

    def upload(k):
        with torch.cuda.stream(copy_stream):
            x = batches[order[k]].to("cuda", non_blocking=True)
            device_in[k % 2] = x.half().contiguous(memory_format=torch.channels_last)
            uploaded[k % 2].record(copy_stream)

    upload(0)
    for k in range(len(order)):
        if k + 1 < len(order):
            upload(k + 1)
        compute_stream.wait_event(uploaded[k % 2])
        with torch.cuda.stream(compute_stream):
            x = device_in[k % 2]
            x.record_stream(compute_stream)
            out = model(x).to("cpu", non_blocking=True)
            done = torch.cuda.Event()
            done.record(compute_stream)
        done.synchronize()
        process(out, sink)
    return len(sink)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--timed", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=10088)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval().cuda().half()
    model = model.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(args.seed)
    batches = [torch.randn(args.batch, 3, 224, 224, generator=gen).pin_memory()
               for _ in range(args.batches)]
    copy_stream, compute_stream = torch.cuda.Stream(), torch.cuda.Stream()
    torch.backends.cudnn.benchmark = True
    with torch.inference_mode():
        warm = list(range(args.batches - args.timed))
        if warm:
            run(model, batches, warm, copy_stream, compute_stream)
        torch.cuda.synchronize()
        timed = list(range(args.batches - args.timed, args.batches))
        start = time.perf_counter()
        run(model, batches, timed, copy_stream, compute_stream)
        ms = (time.perf_counter() - start) * 1e3
        images, elapsed = 0, 0.0
        while elapsed < args.duration:
            t0 = time.perf_counter()
            images += run(model, batches, list(range(args.batches)), copy_stream, compute_stream)
            elapsed += time.perf_counter() - t0
    print(f"PyTorch {torch.__version__} peer on {torch.cuda.get_device_name()}: "
          f"{args.timed} x {args.batch} in {ms:.3f} ms; {images / elapsed:.0f} images/s "
          f"over {elapsed:.1f} s (FP16 channels-last, pinned, non_blocking, 2 streams)")


if __name__ == "__main__":
    main()
