#!/usr/bin/env python3
"""Peer for bench/seed.ts: torch.bmm on [R,M,K] x [R,K,N] under a CUDA graph, for the seed table's shapes.

For every shape, R and precision: capture one bmm in a CUDA graph, replay it many times, time each replay with
CUDA events and report the median (microseconds). Also measures the card's copy bandwidth with a large
device-to-device cudaMemcpy (tensor.copy_), reported as 2 x bytes / time (read + write), median of 20.

usage: python3 bench/peers/seed_torch.py [--out seed-torch.json] [--r 2,5,...] [--precision fp32,bf16] [--iters 200]
"""
import argparse
import json
import statistics

import torch

SHAPES = {"matvec": (512, 1, 512), "conv2_2": (256, 128, 1152), "square": (256, 256, 256)}
R_DEFAULT = [2, 5, 10, 20, 40, 60, 80, 120]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def time_graph(fn, iters):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    for _ in range(10):
        g.replay()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3)
    return statistics.median(times)


def copy_bandwidth_gbps():
    n = 1 << 30  # 1 GiB
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    ts = []
    for _ in range(20):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        dst.copy_(src)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * n / statistics.median(ts) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="seed-torch.json")
    ap.add_argument("--r", default=",".join(map(str, R_DEFAULT)))
    ap.add_argument("--precision", default="fp32,bf16")
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()
    # fp32 stays fp32 (no TF32), like Loom's fp32 plans (CUBLAS_COMPUTE_32F)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rs = [int(x) for x in args.r.split(",")]
    rows = []
    for prec in args.precision.split(","):
        dt = DTYPES[prec]
        for shape, (M, N, K) in SHAPES.items():
            for R in rs:
                gen = torch.Generator(device="cuda").manual_seed(R)
                w = (torch.rand(R, M, K, device="cuda", generator=gen) - 0.5).to(dt)
                x = (torch.rand(R, K, N, device="cuda", generator=gen) - 0.5).to(dt)
                y = torch.empty(R, M, N, device="cuda", dtype=dt)
                us = time_graph(lambda: torch.bmm(w, x, out=y), args.iters)
                rows.append({"shape": shape, "R": R, "precision": prec, "M": M, "N": N, "K": K, "us": us})
                print(f"torch.bmm+graph {prec} {shape} R={R}: {us:.1f} us", flush=True)
                del w, x, y
    bw = copy_bandwidth_gbps()
    print(f"copy bandwidth (D2D memcpy, 2 x 1 GiB / time): {bw:.0f} GB/s", flush=True)
    out = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "copyBandwidthGBps": bw,
        "iters": args.iters,
        "rows": rows,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
