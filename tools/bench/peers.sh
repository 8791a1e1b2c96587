#!/usr/bin/env bash
# peers.sh - clsoftmax beside NumPy, PyTorch (CPU) and oneDNN on the same shapes, in one run.
#
# Usage: tools/bench/peers.sh [--clsoftmax PATH] [--shapes LIST] [--runs N] [--threads N]
#                             [--plot FILE.png] [--out DIR] [--install]
#
# Runs `clsoftmax bench --csv` (both backends), then the same shapes, float32, through
#   - NumPy: the classic formula, m = max; y = exp(x - m); y /= sum(y) (NumPy's ufuncs run
#     on one thread whatever the thread count),
#   - PyTorch CPU: torch.softmax(x, dim, out=y) with torch.set_num_threads(THREADS),
#   - oneDNN: its softmax primitive through the C API (tools/bench/onednn_softmax.c, built
#     here with cc against Debian's libdnnl-dev), OMP_NUM_THREADS=THREADS,
# each the median of RUNS timed runs after a warm-up, and prints one table: GB/s
# (2 x elements x 4 bytes / median), the share of the copy measured by clsoftmax bench in
# this run (the OpenCL copy kernel for OpenCL results, the threaded memcpy for the others),
# clsoftmax's ratios to each peer, and the OpenCL host path's time over the buffer path's. Python is /usr/bin/python3 (Debian's
# python3-numpy and python3-torch). --plot draws GB/s against row length with gnuplot;
# --out keeps the raw CSV files of the run in DIR.
# Without --install, missing packages are listed with the apt-get line that installs them.
# float16/bfloat16, the backward and cross-entropy beside PyTorch: tools/bench/peers_half.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
clsoftmax=""
shapes="1000000x8,65536x128,8192x1024,16384x1000,256x32000,32x262144,4x4194304,1000x16384:0"
runs=7
threads=2
plot=""
out=""
install=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --clsoftmax) clsoftmax="$2"; shift 2 ;;
    --shapes) shapes="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --plot) plot="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --install) install=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "peers.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

if [ -z "$clsoftmax" ]; then
    for c in "$here/../../build/tools/clsoftmax" "$(command -v clsoftmax || true)"; do
        if [ -n "$c" ] && [ -x "$c" ]; then clsoftmax="$c"; break; fi
    done
fi
if [ -z "$clsoftmax" ] || [ ! -x "$clsoftmax" ]; then
    echo "peers.sh: no clsoftmax tool found; pass --clsoftmax PATH (e.g. build/tools/clsoftmax)" >&2
    exit 2
fi

# ---- what is needed, and what is missing ----------------------------------------
py=/usr/bin/python3
missing=()
[ -x "$py" ] || missing+=(python3)
[ -x "$py" ] && ! "$py" -c 'import numpy' 2>/dev/null && missing+=(python3-numpy)
[ -x "$py" ] && ! "$py" -c 'import torch' 2>/dev/null && missing+=(python3-torch)
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || missing+=(libdnnl-dev)
command -v cc >/dev/null || missing+=(gcc)
[ -n "$plot" ] && ! command -v gnuplot >/dev/null && missing+=(gnuplot-nox)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$install" = 1 ]; then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}"
    else
        echo "peers.sh: missing: ${missing[*]}" >&2
        echo "install them with: apt-get install -y ${missing[*]}   (or rerun with --install)" >&2
        exit 1
    fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc -O2 "$here/onednn_softmax.c" -o "$work/onednn_softmax" -ldnnl

# ---- one run of everything ------------------------------------------------------
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), $(nproc) cores," \
     "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" >&2
echo "# clsoftmax bench ..." >&2
"$clsoftmax" bench --backend all --csv --runs "$runs" --shapes "$shapes" >"$work/clsoftmax.csv"

echo "# NumPy and PyTorch ..." >&2
"$py" - "$shapes" "$runs" "$threads" >"$work/python.csv" <<'PY'
import sys, time
import numpy as np
import torch

shapes, runs, threads = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)

def median_ms(fn):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3

for text in shapes:
    dims, _, ax = text.partition(":")
    dims = [int(d) for d in dims.split("x")]
    axis = int(ax) if ax else -1
    if axis < 0:
        axis += len(dims)
    x = np.random.default_rng(20240229).uniform(-8, 8, dims).astype(np.float32)
    y = np.empty_like(x)

    def numpy_softmax(x=x, y=y, axis=axis):
        m = x.max(axis=axis, keepdims=True)
        np.subtract(x, m, out=y)
        np.exp(y, out=y)
        np.divide(y, y.sum(axis=axis, keepdims=True), out=y)

    shape = "x".join(str(d) for d in dims)
    print(f"numpy,f32,{shape},{axis},{median_ms(numpy_softmax):.4f}", flush=True)
    tx, ty = torch.from_numpy(x), torch.empty(dims, dtype=torch.float32)
    with torch.inference_mode():
        ms = median_ms(lambda: torch.softmax(tx, axis, out=ty))
    print(f"torch,f32,{shape},{axis},{ms:.4f}", flush=True)
PY

echo "# oneDNN ..." >&2
IFS=, read -r -a shape_args <<<"$shapes"
OMP_NUM_THREADS="$threads" "$work/onednn_softmax" "$runs" "${shape_args[@]}" >"$work/onednn.csv"

# ---- the table (and the plot data) ----------------------------------------------
"$py" - "$work" "$threads" "$plot" <<'PY'
import csv, sys
work, threads, plot = sys.argv[1], sys.argv[2], sys.argv[3]
res = {}   # (who, shape, axis) -> (ms, gbps)
order = []
with open(f"{work}/clsoftmax.csv") as f:
    for r in csv.DictReader(f):
        key = (r["shape"], int(r["axis"]))
        if key not in order:
            order.append(key)
        res[(f'{r["backend"]}-{r["path"]}',) + key] = (float(r["median_ms"]), float(r["gbps"]))
for name in ("python", "onednn"):
    with open(f"{work}/{name}.csv") as f:
        for who, _dtype, shape, axis, ms in csv.reader(f):
            count = 1
            for d in shape.split("x"):
                count *= int(d)
            ms = float(ms)
            res[(who, shape, int(axis))] = (ms, 2 * count * 4 / (ms * 1e-3) * 1e-9)

cols = [("cpu-copy", "CPU copy"), ("cpu-host", "clsoftmax CPU"), ("opencl-copy", "OpenCL copy"),
        ("opencl-buffer", "OpenCL buffer"), ("opencl-host", "OpenCL host"),
        ("onednn", "oneDNN"), ("torch", "PyTorch"), ("numpy", "NumPy")]
def cell(who, key):
    v = res.get((who,) + key)
    # OpenCL results against the OpenCL copy kernel, the rest against the threaded memcpy.
    base = "opencl-copy" if who.startswith("opencl") else "cpu-copy"
    copy = res.get((base,) + key)
    if v is None:
        return "-"
    if who.endswith("-copy") or copy is None:
        return f"{v[1]:.1f}"
    return f"{v[1]:.1f} ({100 * v[1] / copy[1]:.0f}%)"
def ratio(a, b, key):
    va, vb = res.get((a,) + key), res.get((b,) + key)
    return f"{vb[0] / va[0]:.2f}x" if va and vb else "-"

print(f"GB/s (2 x elements x 4 bytes / median), float32, {threads} threads; (%): share of "
      "the same run's copy of the same bytes (OpenCL: the copy kernel; others: the CPU memcpy)")
head = ["shape", "axis"] + [c[1] for c in cols] + ["CPU/oneDNN", "CPU/PyTorch", "CPU/NumPy",
                                                    "OpenCL buf/oneDNN", "OpenCL host time/buf"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for key in order:
    row = [key[0], str(key[1])] + [cell(c[0], key) for c in cols]
    row += [ratio("cpu-host", p, key) for p in ("onednn", "torch", "numpy")]
    row += [ratio("opencl-buffer", "onednn", key)]
    # The host path's cost over the device-buffer path (below 1: the host path is faster).
    row += [ratio("opencl-buffer", "opencl-host", key)]
    print("| " + " | ".join(row) + " |")
print("\nratios: the peer's median time over clsoftmax's (above 1: clsoftmax is faster); "
      "OpenCL host time/buf: the host path's median time over the device-buffer path's")

if plot:
    with open(f"{work}/plot.dat", "w") as f:
        for who, label in [c for c in cols if not c[0].endswith("-copy")]:
            f.write(f'"{label}"\n')
            pts = []
            for key in order:
                v = res.get((who,) + key)
                if v is None:
                    continue
                dims = [int(d) for d in key[0].split("x")]
                pts.append((dims[key[1]], v[1]))
            for n, g in sorted(pts):
                f.write(f"{n} {g}\n")
            f.write("\n\n")
PY

if [ -n "$out" ]; then
    mkdir -p "$out" && cp "$work"/*.csv "$out"/
fi

if [ -n "$plot" ]; then
    copy_gbps="$(awk -F, '$1=="cpu" && $2=="copy" {s+=$7; n++} END {if (n) printf "%.2f", s/n}' \
        "$work/clsoftmax.csv")"
    gnuplot <<GP
set terminal pngcairo size 1000,600
set output "$plot"
set logscale x
set xlabel "row length (elements along the softmax axis)"
set ylabel "GB/s (2 x elements x 4 bytes / median)"
set key outside right
set title "softmax float32, $threads threads"
plot for [i=0:5] "$work/plot.dat" index i using 1:2 with linespoints title columnheader(1), \
     $copy_gbps with lines dashtype 2 lw 2 title "CPU copy (mean over shapes)"
GP
    echo "# plot written to $plot" >&2
fi
