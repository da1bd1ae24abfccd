"""The peers Anvil is measured against, on the same card in the same run:
PyTorch eager (FP16, channels-last) and torch.compile(mode="max-autotune"),
input already on the GPU, median GPU time per batch over CUDA events.

    python3 bench/pytorch_peers.py --model resnet18 --batches 1 128
"""
import argparse
import time

import torch
import torchvision


def median_ms(fn, x, iterations=100, warmup=20):
    for _ in range(warmup):
        fn(x)
    torch.cuda.synchronize()
    times = []
    for _ in range(iterations):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval().cuda().half()
    model = model.to(memory_format=torch.channels_last)
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}")
    with torch.inference_mode():
        for batch in args.batches:
            x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.half)
            x = x.contiguous(memory_format=torch.channels_last)
            eager = median_ms(model, x)
            print(f"pytorch eager fp16 channels-last  batch {batch:4d}: {eager:.3f} ms", flush=True)
            if args.no_compile:
                continue
            t0 = time.time()
            compiled = torch.compile(model, mode="max-autotune")
            compiled(x)
            build_s = time.time() - t0
            ms = median_ms(compiled, x)
            print(f"torch.compile max-autotune        batch {batch:4d}: {ms:.3f} ms "
                  f"(compile {build_s:.0f} s; max-autotune replays CUDA graphs)", flush=True)


if __name__ == "__main__":
    main()
