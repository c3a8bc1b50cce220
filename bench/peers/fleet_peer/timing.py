"""Timing: whole ticks with time.perf_counter, their percentiles, and the card's peaks for the roofline floor."""
import math
import time

from .deps import torch
from .util import log


def percentile(xs, q):
    """Linear interpolation between closest ranks (numpy's default), pure Python."""
    s = sorted(xs)
    if not s:
        raise ValueError("percentile of no samples")
    pos = (len(s) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def tick_stats(us, semantics):
    return {"p50_us": percentile(us, 50), "p99_us": percentile(us, 99), "mean_us": sum(us) / len(us),
            "min_us": min(us), "iters": len(us), "semantics": semantics}


def time_ticks(tick, warmup, iters):
    import gc
    for _ in range(warmup):
        tick()
    gc.collect()
    gc.disable()  # a collection inside a tick would be timed as the peer's
    try:
        us = []
        for _ in range(iters):
            t0 = time.perf_counter()
            tick()
            us.append((time.perf_counter() - t0) * 1e6)
    finally:
        gc.enable()
    return us


def measure_peaks(device):
    """Best of a few, timed with CUDA events: the card's ceilings for the roofline floor."""
    def best_s(fn, reps):
        fn()
        fn()
        torch.cuda.synchronize()
        best = math.inf
        for _ in range(reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            best = min(best, a.elapsed_time(b) / 1e3)
        return best

    n, peaks = 8192, {}
    for key, dt in (("fp32_flops", torch.float32), ("bf16_flops", torch.bfloat16)):
        a, b = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
        c = torch.empty(n, n, device=device, dtype=dt)
        peaks[key] = 2 * n ** 3 / best_s(lambda: torch.mm(a, b, out=c), 5)
        del a, b, c
    nbytes = 1 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    peaks["copy_bytes_per_s"] = 2 * nbytes / best_s(lambda: dst.copy_(src), 10)
    host = torch.empty(nbytes, dtype=torch.uint8).pin_memory()
    peaks["h2d_bytes_per_s"] = nbytes / best_s(lambda: dst.copy_(host, non_blocking=True), 5)
    del src, dst, host
    torch.cuda.empty_cache()
    log("peaks: fp32 {:.1f} TFLOP/s, bf16 {:.1f} TFLOP/s, D2D copy {:.0f} GB/s, pinned H2D {:.1f} GB/s".format(
        peaks["fp32_flops"] / 1e12, peaks["bf16_flops"] / 1e12, peaks["copy_bytes_per_s"] / 1e9, peaks["h2d_bytes_per_s"] / 1e9))
    return peaks
