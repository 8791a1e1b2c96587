#!/usr/bin/python3
"""peers_half.py - clsoftmax beside PyTorch CPU for float16/bfloat16 softmax, its backward and
cross-entropy, in one run.

Run with the system interpreter (Debian's python3-torch, python3-numpy):
    /usr/bin/python3 tools/bench/peers_half.py [--clsoftmax PATH] [--ops forward,backward,xent]
        [--dtypes f16,bf16] [--shapes LIST] [--runs N] [--threads N] [--out DIR]

For every op and dtype it runs `clsoftmax bench --op OP --dtype T --csv` (both backends: the
CPU backend's host path, the OpenCL buffer and host paths, and each backend's copy of the same
tensor), then PyTorch on the same shapes with torch.set_num_threads(THREADS):
  forward   torch.softmax(x, dim)
  backward  torch._softmax_backward_data(dy, y, dim, dtype) (what autograd calls)
  xent      F.cross_entropy(z, labels) and torch.autograd.grad of it (forward + backward, mean
            reduction: clsoftmax's xent computes the loss and the gradient in one pass)
PyTorch's CPU kernels have no float16 softmax (1.13: "not implemented for 'Half'"), so its f16
rows go through float32 and back (softmax(x, dim, dtype=torch.float32).half(), the usual
workaround), marked "via f32". GB/s counts the bytes as `clsoftmax bench` does (forward 2 x the
tensor, backward 3 x, xent 2 x plus 8 bytes a label); "(n%)" is the share of the same run's copy
(OpenCL rows: the OpenCL copy kernel; the others: the CPU memcpy). Ratios are PyTorch's median
time over clsoftmax's (above 1: clsoftmax is faster).
"""
import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = "65536x128,8192x1024,16384x1000,256x32000,32x262144,1000x16384:0"
TORCH_DTYPE = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
               "bf16": torch.bfloat16}
SIZE = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2}


def median_ms(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def parse_shape(text):
    dims, _, ax = text.partition(":")
    dims = [int(d) for d in dims.split("x")]
    axis = int(ax) if ax else -1
    return dims, axis + len(dims) if axis < 0 else axis


def traffic(op, dims, es):
    count = 1
    for d in dims:
        count *= d
    if op == "backward":
        return 3 * count * es
    if op == "xent":
        return 2 * count * es + count // dims[-1] * 8 + es
    return 2 * count * es


def torch_case(op, dtype, dims, axis, runs):
    """PyTorch's median ms for one case, and whether it went through float32."""
    dt = TORCH_DTYPE[dtype]
    via = dt == torch.float16
    g = torch.Generator().manual_seed(20240229)
    x = (torch.rand(dims, generator=g) * 16 - 8).to(dt)
    if op == "forward":
        if via:
            fn = lambda: torch.softmax(x, axis, dtype=torch.float32).to(dt)
        else:
            fn = lambda: torch.softmax(x, axis)
        with torch.inference_mode():
            return median_ms(fn, runs), via
    if op == "backward":
        y = torch.softmax(x.float(), axis).to(dt)
        dy = (torch.rand(dims, generator=g) * 2 - 1).to(dt)
        if via:
            fn = lambda: torch._softmax_backward_data(dy.float(), y.float(), axis,
                                                      torch.float32).to(dt)
        else:
            fn = lambda: torch._softmax_backward_data(dy, y, axis, dt)
        with torch.inference_mode():
            return median_ms(fn, runs), via
    classes = dims[-1]
    z = x.reshape(-1, classes).clone().requires_grad_()
    labels = torch.randint(0, classes, (z.shape[0],), generator=g)

    def step():
        loss = F.cross_entropy(z.float() if via else z, labels)
        (gz,) = torch.autograd.grad(loss, z)
        return gz

    return median_ms(step, runs), via


def run_clsoftmax(tool, op, dtype, shapes, runs):
    cmd = [tool, "bench", "--backend", "all", "--csv", "--op", op, "--dtype", dtype, "--runs",
           str(runs), "--shapes", shapes]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if res.returncode != 0:  # keep what was measured; say what was not
        print(f"# clsoftmax bench --op {op} --dtype {dtype} failed ({res.returncode}): "
              f"{res.stderr.strip()}", file=sys.stderr)
    return res.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--clsoftmax", default=os.path.join(here, "..", "..", "build", "tools",
                                                        "clsoftmax"))
    ap.add_argument("--ops", default="forward,backward,xent")
    ap.add_argument("--dtypes", default="f16,bf16")
    ap.add_argument("--shapes", default=SHAPES)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="", help="keep clsoftmax's CSV output in this folder")
    a = ap.parse_args()
    if not os.access(a.clsoftmax, os.X_OK):
        sys.exit(f"peers_half.py: no clsoftmax tool at {a.clsoftmax}; pass --clsoftmax PATH")
    torch.set_num_threads(a.threads)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"PyTorch {torch.__version__} with {a.threads} threads", flush=True)
    head = ["op", "type", "shape", "axis", "clsoftmax CPU", "OpenCL buffer", "OpenCL host",
            "PyTorch CPU", "PyTorch/CPU", "PyTorch/OpenCL buf"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for op in a.ops.split(","):
        shapes = a.shapes.split(",")
        if op == "xent":  # the classes lie along the last axis
            shapes = [s for s in shapes if parse_shape(s)[1] == len(parse_shape(s)[0]) - 1]
        for dtype in a.dtypes.split(","):
            text = run_clsoftmax(a.clsoftmax, op, dtype, ",".join(shapes), a.runs)
            if a.out:
                os.makedirs(a.out, exist_ok=True)
                with open(os.path.join(a.out, f"clsoftmax-{op}-{dtype}.csv"), "w") as f:
                    f.write(text)
            res = {}
            for r in csv.DictReader(io.StringIO(text)):
                res[(r["backend"], r["path"], r["shape"], int(r["axis"]))] = (
                    float(r["median_ms"]), float(r["gbps"]), float(r["pct_of_copy"]))
            for s in shapes:
                dims, axis = parse_shape(s)
                shape = "x".join(str(d) for d in dims)
                ms, via = torch_case(op, dtype, dims, axis, a.runs)
                gbps = traffic(op, dims, SIZE[dtype]) / (ms * 1e-3) * 1e-9
                cpu_copy = res.get(("cpu", "copy", shape, axis))

                def cell(backend, path):
                    v = res.get((backend, path, shape, axis))
                    return "-" if v is None else f"{v[1]:.2f} ({v[2]:.0f}%)"

                def ratio(backend, path):
                    v = res.get((backend, path, shape, axis))
                    return "-" if v is None else f"{ms / v[0]:.2f}x"

                pct = f" ({100 * gbps / cpu_copy[1]:.0f}%)" if cpu_copy else ""
                row = [op, dtype, shape, str(axis), cell("cpu", "host"), cell("opencl", "buffer"),
                       cell("opencl", "host"), f"{gbps:.2f}{pct}{' via f32' if via else ''}",
                       ratio("cpu", "host"), ratio("opencl", "buffer")]
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
