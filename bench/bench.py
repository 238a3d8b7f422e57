"""graft against onnxruntime and PyTorch on the same exported models, in one
run on one machine: latency at batch 1 (median of the runs after warm-up) and
throughput at batch 8, with ratios and graft's effective GFLOP/s.

usage: python3 bench/bench.py [--models resnet18,resnet50] [--threads 2] [--runs 20] [--json]
Models come from models/onnx/export.py (models/onnx/generated/<name>/model.onnx).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# PyTorch runs under Debian's python3 (it has torch), on the exporter's own model builders.
TORCH_SNIPPET = r"""
import json, statistics, sys, time, torch
sys.path.insert(0, sys.argv[1])
import export
name, batch, runs, warmup, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
model, _ = export.build_model(name, export.SPECS[name].size, 0, None)
x = torch.randn(batch, 3, *export.SPECS[name].size)
times = []
with torch.no_grad():
    for i in range(warmup + runs):
        t = time.perf_counter(); model(x); times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": statistics.median(times[warmup:])}))
"""


def bench_graft(graft, model, batch, runs, warmup, threads):
    out = subprocess.run([graft, "bench", model, "--batch", str(batch), "--runs", str(runs), "--warmup", str(warmup),
                          "--threads", str(threads), "--json"], capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    return r["median_ms"], r.get("gflops", 0.0)


def bench_ort(model, batch, runs, warmup, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [batch if not isinstance(d, int) or i == 0 else d for i, d in enumerate(inp.shape)]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    times = []
    for _ in range(warmup + runs):
        t = time.perf_counter()
        sess.run(None, {inp.name: x})
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times[warmup:])


def bench_torch(name, batch, runs, warmup, threads):
    out = subprocess.run(["/usr/bin/python3", "-c", TORCH_SNIPPET, os.path.join(ROOT, "models", "onnx"), name,
                          str(batch), str(runs), str(warmup), str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["median_ms"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet18,resnet50")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peak-gflops", type=float, default=224.0,
                   help="the machine's FP32 peak (2 Zen 3 cores with AVX2: 2 x 2 FMA x 8 lanes x 2 x ~3.5 GHz)")
    p.add_argument("--graft", default=os.path.join(ROOT, "build", "tools", "graft"))
    p.add_argument("--models-dir", default=os.path.join(ROOT, "models", "onnx", "generated"))
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    rows = []
    for name in args.models.split(","):
        model = os.path.join(args.models_dir, name, "model.onnx")
        if not os.path.exists(model):
            sys.exit(f"{model} is missing: /usr/bin/python3 models/onnx/export.py --model {name}")
        for batch in map(int, args.batches.split(",")):
            g_ms, gflop = bench_graft(args.graft, model, batch, args.runs, args.warmup, args.threads)
            o_ms = bench_ort(model, batch, args.runs, args.warmup, args.threads)
            t_ms = bench_torch(name, batch, args.runs, args.warmup, args.threads)
            rows.append({"model": name, "batch": batch, "graft_ms": g_ms, "ort_ms": o_ms, "torch_ms": t_ms,
                         "graft_vs_ort": g_ms / o_ms, "graft_vs_torch": g_ms / t_ms,
                         "graft_gflops_per_s": gflop / (g_ms / 1e3),
                         "peak_share": gflop / (g_ms / 1e3) / args.peak_gflops,
                         "graft_images_per_s": batch / (g_ms / 1e3)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'model':<10} {'batch':>5} {'graft ms':>9} {'ort ms':>8} {'torch ms':>9} {'g/ort':>6} {'g/torch':>7} "
          f"{'img/s':>7} {'GFLOP/s':>8} {'of peak':>7}")
    for r in rows:
        print(f"{r['model']:<10} {r['batch']:>5} {r['graft_ms']:>9.2f} {r['ort_ms']:>8.2f} {r['torch_ms']:>9.2f} "
              f"{r['graft_vs_ort']:>6.2f} {r['graft_vs_torch']:>7.2f} {r['graft_images_per_s']:>7.1f} "
              f"{r['graft_gflops_per_s']:>8.1f} {r['peak_share']:>6.0%}")


if __name__ == "__main__":
    main()
