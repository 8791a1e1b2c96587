#!/usr/bin/python3
"""peers_ops.py - PyTorch CPU on the shapes of `clsoftmax bench-ops`, for comparison.

Run with the system interpreter (Debian's python3-torch, python3-numpy):
    /usr/bin/python3 tools/bench/peers_ops.py [--op attention|head] [--reps N] [--quick]

Attention is timed as the three steps it is made of, torch.matmul(q, k^T) * scale (+ causal
mask), torch.softmax, torch.matmul(p, v), float32, and each step is reported separately so the
GEMM and softmax shares compare with bench-ops' columns. The head is torch.matmul(x, w^T) + b,
then torch.softmax (and torch.topk for the top-5 row). Median of --reps runs after a warm-up.
"""
import argparse
import os
import statistics
import time

import torch

ATTENTION = [(1, 8, 128, 64, 0), (1, 8, 512, 64, 0), (1, 8, 512, 64, 1), (2, 8, 1024, 64, 0),
             (1, 8, 2048, 128, 0)]
ATTENTION_QUICK = [(1, 8, 128, 64, 0), (1, 8, 512, 64, 1)]
HEAD = [(64, 768, 1000, 0), (1024, 768, 1000, 0), (256, 1024, 32000, 0), (64, 4096, 50000, 0),
        (64, 4096, 50000, 5)]
HEAD_QUICK = [(64, 768, 1000, 0), (64, 768, 1000, 5)]


def median_time(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_attention(cases, reps):
    print(f"{'shape':34} {'total ms':>9} {'GFLOP/s':>8} {'gemm ms':>9} {'softmax ms':>10}")
    for b, h, s, d, causal in cases:
        g = torch.Generator().manual_seed(0)
        q = torch.randn(b, h, s, d, generator=g) * 0.25
        k = torch.randn(b, h, s, d, generator=g) * 0.25
        v = torch.randn(b, h, s, d, generator=g) * 0.25
        scale = 1.0 / d ** 0.5
        mask = torch.ones(s, s, dtype=torch.bool).tril() if causal else None
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        probs = torch.softmax(scores, -1)

        def qk():
            sc = torch.matmul(q, k.transpose(-1, -2)) * scale
            if mask is not None:
                sc = sc.masked_fill(~mask, float("-inf"))
            return sc

        t1 = median_time(qk, reps)
        t2 = median_time(lambda: torch.softmax(scores, -1), reps)
        t3 = median_time(lambda: torch.matmul(probs, v), reps)
        total = t1 + t2 + t3
        flops = 2.0 * b * h * s * s * 2 * d
        name = f"b{b} h{h} s{s} d{d}" + (" causal" if causal else "")
        print(f"{name:34} {total * 1e3:9.2f} {flops / total * 1e-9:8.1f} "
              f"{(t1 + t3) * 1e3:9.2f} {t2 * 1e3:10.2f}", flush=True)


def bench_head(cases, reps):
    print(f"{'shape':34} {'total ms':>9} {'GFLOP/s':>8} {'gemm ms':>9} {'softmax ms':>10}")
    for rows, inf, classes, topk in cases:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(rows, inf, generator=g) * 0.25
        w = torch.randn(classes, inf, generator=g) * 0.25
        bias = torch.randn(classes, generator=g)
        logits = torch.matmul(x, w.t()) + bias
        t1 = median_time(lambda: torch.matmul(x, w.t()) + bias, reps)
        if topk:
            t2 = median_time(lambda: torch.softmax(logits, -1).topk(topk, -1), reps)
        else:
            t2 = median_time(lambda: torch.softmax(logits, -1), reps)
        total = t1 + t2
        flops = 2.0 * rows * inf * classes
        name = f"rows{rows} in{inf} cls{classes}" + (" top5" if topk else " +bias")
        print(f"{name:34} {total * 1e3:9.2f} {flops / total * 1e-9:8.1f} "
              f"{t1 * 1e3:9.2f} {t2 * 1e3:10.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--op", choices=["attention", "head", "both"], default="both")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="torch threads (default: every core, as OpenBLAS and PoCL use)")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(a.threads)
    print(f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads, float32, "
          f"median of {a.reps}")
    if a.op in ("attention", "both"):
        bench_attention(ATTENTION_QUICK if a.quick else ATTENTION, a.reps)
    if a.op in ("head", "both"):
        bench_head(HEAD_QUICK if a.quick else HEAD, a.reps)


if __name__ == "__main__":
    main()
