"""PyTorch at small batches with and without CUDA graphs, the peers of
`anvil run --cuda-graph`: a torchvision model (seeded random weights, as in
bench/pytorch_peers.py) in FP16 channels-last, inference mode, input already
on the GPU. For each way of running it, the median over many calls of the
GPU time between CUDA events recorded around the call, and of the host's
time for the call itself:

  eager               the module called from Python: one launch per kernel,
                      so at batch 1 the host's launches set the pace
  eager + CUDAGraph   the same kernels captured once into torch.cuda.CUDAGraph
                      (after a warm-up on a side stream, as PyTorch's docs
                      show) and replayed: one launch per call
  torch.compile       mode="max-autotune": Inductor's kernels, replayed
                      through CUDA graphs (cudagraph trees)

    python3 bench/pytorch_graph_peers.py --model resnet18 --batch 1
"""
import argparse
import time

import torch
import torchvision


def median_ms(fn, iterations, warmup=20):
    """Median GPU ms (CUDA events around the call) and host ms (the call)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    gpu, host = [], []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(iterations):
        start.record()
        t0 = time.perf_counter()
        fn()
        host.append((time.perf_counter() - t0) * 1e3)
        end.record()
        end.synchronize()
        gpu.append(start.elapsed_time(end))
    gpu.sort()
    host.sort()
    return gpu[len(gpu) // 2], host[len(host) // 2]


def capture(model, x):
    """The model's forward captured into a CUDA graph that reads static_x."""
    static_x = x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # cuDNN and the caching allocator warm up outside the capture
            model(static_x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = model(static_x)
    return graph, static_x, static_y


def report(name, batch, gpu_ms, host_ms, note=""):
    print(f"{name:34s} batch {batch:4d}: GPU {gpu_ms:.3f} ms, host call {host_ms:.3f} ms{note}",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("pytorch_graph_peers.py: no CUDA GPU on this machine")
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval().cuda().half()
    model = model.to(memory_format=torch.channels_last)
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}, {args.model} FP16 "
          f"channels-last, medians of {args.iterations} calls")
    batch = args.batch
    with torch.inference_mode():
        x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.half)
        x = x.contiguous(memory_format=torch.channels_last)

        gpu, host = median_ms(lambda: model(x), args.iterations)
        report("pytorch eager", batch, gpu, host)

        graph, static_x, static_y = capture(model, x)
        static_x.copy_(x)
        graph.replay()
        want = model(x)
        diff = (static_y.float() - want.float()).abs().max().item()
        gpu, host = median_ms(graph.replay, args.iterations)
        report("pytorch eager + torch.cuda.CUDAGraph", batch, gpu, host,
               f" (replay vs eager: max |diff| {diff:.3g})")

        if args.no_compile:
            return
        t0 = time.time()
        compiled = torch.compile(model, mode="max-autotune")
        compiled(x)
        compile_s = time.time() - t0
        gpu, host = median_ms(lambda: compiled(x), args.iterations)
        report("torch.compile max-autotune", batch, gpu, host,
               f" (compile {compile_s:.0f} s; replays CUDA graphs)")


if __name__ == "__main__":
    main()
