"""graft against onnxruntime and PyTorch on the same exported models, in one
run on one machine: latency at batch 1 and throughput at batch 8 (medians of
the timed runs after warm-up), the ratios graft/onnxruntime and graft/PyTorch
(below 1: graft is faster), and graft's effective GFLOP/s as a share of the
machine's FP32 peak.

usage: python3 bench/bench.py [--models resnet18,resnet50] [--graft build/tools/graft] [--json]

Run it with the pyenv python3 (onnxruntime, numpy); PyTorch runs in a
subprocess under Debian's /usr/bin/python3 on the model definitions of
models/onnx/export.py. The models are that script's exports,
models/onnx/generated/<name>/model.onnx; their reference input fixes the
image size.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = "/usr/bin/python3"

TORCH_SNIPPET = r"""
import json, statistics, sys, time, torch
sys.path.insert(0, sys.argv[1])
import export
name, batch, height, width, runs, warmup, threads = sys.argv[2], *map(int, sys.argv[3:])
torch.set_num_threads(threads)
model, _ = export.build_model(name, (height, width), 0, None)
x = torch.randn(batch, 3, height, width)
times = []
with torch.no_grad():
    for i in range(warmup + runs):
        t = time.perf_counter(); model(x); times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": statistics.median(times[warmup:])}))
"""


def run(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{what} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def bench_graft(graft, model, batch, size, args):
    out = run([graft, "bench", model, "--batch", str(batch), "--size", f"{size[0]}x{size[1]}",
               "--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads), "--json"],
              f"graft bench {model}")
    r = json.loads(out)
    return r["median_ms"], r["gflops"]


def bench_ort(model, batch, size, args):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal((batch, 3, *size)).astype(np.float32)
    times = []
    for _ in range(args.warmup + args.runs):
        t = time.perf_counter()
        sess.run(None, {inp.name: x})
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times[args.warmup:])


def bench_torch(name, batch, size, args):
    out = run([TORCH_PYTHON, "-c", TORCH_SNIPPET, os.path.join(ROOT, "models", "onnx"), name, str(batch),
               str(size[0]), str(size[1]), str(args.runs), str(args.warmup), str(args.threads)],
              f"PyTorch on {name}")
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


def image_size(model_dir):
    """Height and width of the exporter's reference input (the model's default size)."""
    tensor = onnx.load_tensor(os.path.join(model_dir, "test_data_set_0", "input_0.pb"))
    return tuple(numpy_helper.to_array(tensor).shape[2:4])


def measure(name, args):
    model_dir = os.path.join(args.models_dir, name)
    model = os.path.join(model_dir, "model.onnx")
    if not os.path.exists(model):
        sys.exit(f"{model} is missing: {TORCH_PYTHON} models/onnx/export.py --model {name}")
    size = image_size(model_dir)
    rows = []
    for batch in map(int, args.batches.split(",")):
        print(f"  {name} batch {batch}: graft ...", end="", flush=True, file=sys.stderr)
        g_ms, gflop = bench_graft(args.graft, model, batch, size, args)
        print(" onnxruntime ...", end="", flush=True, file=sys.stderr)
        o_ms = bench_ort(model, batch, size, args)
        print(" PyTorch ...", flush=True, file=sys.stderr)
        t_ms = bench_torch(name, batch, size, args)
        gflops_per_s = gflop / (g_ms / 1e3)
        rows.append({"model": name, "batch": batch, "size": list(size), "graft_ms": g_ms, "ort_ms": o_ms,
                     "torch_ms": t_ms, "graft_vs_ort": g_ms / o_ms, "graft_vs_torch": g_ms / t_ms,
                     "graft_images_per_s": batch / (g_ms / 1e3), "ort_images_per_s": batch / (o_ms / 1e3),
                     "torch_images_per_s": batch / (t_ms / 1e3), "graft_gflops_per_s": gflops_per_s,
                     "peak_share": gflops_per_s / args.peak_gflops})
    return rows


def print_table(rows, args):
    print(f"\n{args.threads} threads each; median of {args.runs} runs after {args.warmup} warm-up; "
          f"ratios are graft's time over the other's (below 1: graft is faster)\n")
    print(f"{'model':<18} {'batch':>5} {'graft ms':>9} {'ort ms':>8} {'torch ms':>9} {'g/ort':>6} {'g/torch':>7} "
          f"{'graft img/s':>11} {'GFLOP/s':>8} {'of peak':>7}")
    for r in rows:
        print(f"{r['model']:<18} {r['batch']:>5} {r['graft_ms']:>9.2f} {r['ort_ms']:>8.2f} {r['torch_ms']:>9.2f} "
              f"{r['graft_vs_ort']:>6.2f} {r['graft_vs_torch']:>7.2f} {r['graft_images_per_s']:>11.1f} "
              f"{r['graft_gflops_per_s']:>8.1f} {r['peak_share']:>7.0%}")
    print(f"\npeak: {args.peak_gflops:g} GFLOP/s FP32 (--peak-gflops)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet18,resnet50", help="comma-separated export.py names")
    p.add_argument("--batches", default="1,8", help="batch 1 for latency, 8 for throughput")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=20, help="timed runs per measurement (at least 20 for a median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peak-gflops", type=float, default=224.0,
                   help="the FP32 peak, for the share (2 Zen 3 cores, AVX2, 2 FMA units: 64 FLOP/cycle x ~3.5 GHz)")
    p.add_argument("--graft", default=os.path.join(ROOT, "build", "tools", "graft"), help="the built graft tool")
    p.add_argument("--models-dir", default=os.path.join(ROOT, "models", "onnx", "generated"))
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = p.parse_args()
    if args.runs < 20:
        p.error("--runs: a median wants at least 20 runs")
    if not os.access(args.graft, os.X_OK):
        sys.exit(f"{args.graft}: not built (meson setup build && ninja -C build), or give --graft PATH")

    rows = [row for name in args.models.split(",") for row in measure(name, args)]
    if args.json:
        print(json.dumps({"threads": args.threads, "runs": args.runs, "warmup": args.warmup,
                          "peak_gflops": args.peak_gflops, "rows": rows}, indent=1))
    else:
        print_table(rows, args)


if __name__ == "__main__":
    main()
