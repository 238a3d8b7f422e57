"""graft against onnxruntime and PyTorch on the same exported models, in one run on
one machine, each engine in a process of its own:

  inference   latency at batch 1 and throughput at batch 8 (medians of the timed
              runs after warm-up) for the models of models/onnx/export.py, at the size
              of each model's reference input;
  training    the time of one step (forward, cross-entropy, backward, SGD with
              momentum) of ResNet18 (the form that keeps BatchNormalization) at batch 32
              on 64x64 and batch 8 on 224x224, graft (bench/train_step, through the C
              API) against PyTorch;

with the ratios (graft's time over the other's: below 1, graft is faster), graft's
effective GFLOP/s (its plan's multiply-adds x 2 over the median time) as a share of
the FP32 peak that bench/peak measures on this machine, and the peak resident memory
(VmHWM) of each engine's process.

usage: python3 bench/bench.py [--models resnet18,resnet50,vgg16,alexnet,fcn8s,yolov3]
                              [--train resnet18_bn:32:64,resnet18_bn:8:224] [--build build]
                              [--runs 20] [--warmup 3] [--train-steps 10] [--threads 2] [--json]

Run it with the pyenv python3 (onnxruntime, numpy); PyTorch runs under Debian's
/usr/bin/python3 on the model definitions of models/onnx/export.py. The models are
that script's exports, models/onnx/generated/<name>/model.onnx. The machine is shared:
the timings are medians, but a busy neighbour still shows; compare ratios from one run.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = "/usr/bin/python3"
MODELS = "resnet18,resnet50,vgg16,alexnet,fcn8s,yolov3"
TRAIN = "resnet18_bn:32:64,resnet18_bn:8:224"

ORT_SNIPPET = r"""
import json, statistics, sys, time
import numpy as np, onnxruntime as ort
path, batch, height, width, runs, warmup, threads = sys.argv[1], *map(int, sys.argv[2:])
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((batch, 3, height, width)).astype(np.float32)
name = sess.get_inputs()[0].name
times = []
for i in range(warmup + runs):
    t = time.perf_counter(); sess.run(None, {name: x}); times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": statistics.median(times[warmup:]), "min_ms": min(times[warmup:])}))
"""

TORCH_SNIPPET = r"""
import json, statistics, sys, time, torch
sys.path.insert(0, sys.argv[1])
import export
name, mode, batch, height, width, runs, warmup, threads = sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
torch.set_num_threads(threads)
model, _ = export.build_model(name, (height, width), 0, None)
x = torch.randn(batch, 3, height, width)
times = []
if mode == "infer":
    model.eval()
    with torch.no_grad():
        for i in range(warmup + runs):
            t = time.perf_counter(); model(x); times.append((time.perf_counter() - t) * 1e3)
else:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    y = torch.randint(0, 1000, (batch,), generator=torch.Generator().manual_seed(0))
    for i in range(warmup + runs):
        t = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": statistics.median(times[warmup:]), "min_ms": min(times[warmup:])}))
"""


def run(cmd, what):
    """Runs cmd in a process of its own; returns its stdout's last JSON line and its peak
    resident memory in MiB (ru_maxrss of that process alone, from wait4)."""
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            sys.exit(f"{what} failed:\n{err.read().strip()}")
        text = out.read()
    try:
        result = json.loads(text)  # the whole output (graft's --json)
    except ValueError:
        try:
            result = json.loads(text.strip().splitlines()[-1])  # or its last line (the snippets)
        except (ValueError, IndexError):
            sys.exit(f"{what}: no JSON in its output:\n{text}")
    return result, usage.ru_maxrss / 1024.0


def image_size(model_dir):
    """Height and width of the exporter's reference input (the model's default size)."""
    tensor = onnx.load_tensor(os.path.join(model_dir, "test_data_set_0", "input_0.pb"))
    return tuple(numpy_helper.to_array(tensor).shape[2:4])


def model_path(args, name):
    path = os.path.join(args.models_dir, name, "model.onnx")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: {TORCH_PYTHON} models/onnx/export.py --model {name.replace('_bn', '')}")
    return path


def torch_name(name):
    """export.py builds one PyTorch model per name; its _bn export is the same model."""
    return name[:-3] if name.endswith("_bn") else name


def progress(text):
    print(text, end="", flush=True, file=sys.stderr)


def measure_inference(name, args):
    model = model_path(args, name)
    size = image_size(os.path.dirname(model))
    rows = []
    for batch in map(int, args.batches.split(",")):
        progress(f"  {name} batch {batch}: graft ...")
        g, g_mb = run([args.graft, "bench", model, "--batch", str(batch), "--size", f"{size[0]}x{size[1]}",
                       "--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads),
                       "--json"], f"graft bench {model}")
        progress(" onnxruntime ...")
        o, o_mb = run([sys.executable, "-c", ORT_SNIPPET, model, str(batch), str(size[0]), str(size[1]),
                       str(args.runs), str(args.warmup), str(args.threads)], f"onnxruntime on {name}")
        t, t_mb = (None, None)
        if not args.no_torch:
            progress(" PyTorch ...")
            t, t_mb = run([TORCH_PYTHON, "-c", TORCH_SNIPPET, os.path.join(ROOT, "models", "onnx"), torch_name(name),
                           "infer", str(batch), str(size[0]), str(size[1]), str(args.runs), str(args.warmup),
                           str(args.threads)], f"PyTorch on {name}")
        progress("\n")
        g_ms = g["median_ms"]
        gflops_per_s = g["gflops"] / (g_ms / 1e3)
        rows.append({"model": name, "batch": batch, "size": list(size), "graft_ms": g_ms, "graft_min_ms": g["min_ms"],
                     "ort_ms": o["median_ms"], "torch_ms": t and t["median_ms"],
                     "graft_vs_ort": g_ms / o["median_ms"], "graft_vs_torch": t and g_ms / t["median_ms"],
                     "graft_images_per_s": batch / (g_ms / 1e3), "ort_images_per_s": batch / (o["median_ms"] / 1e3),
                     "torch_images_per_s": t and batch / (t["median_ms"] / 1e3), "graft_gflop": g["gflops"],
                     "graft_gflops_per_s": gflops_per_s, "peak_share": gflops_per_s / args.peak_gflops,
                     "graft_mib": g_mb, "ort_mib": o_mb, "torch_mib": t_mb})
    return rows


def measure_training(spec, args):
    name, batch, side = spec.split(":")
    batch, side = int(batch), int(side)
    model = model_path(args, name)
    progress(f"  training {name} batch {batch} at {side}x{side}: graft ...")
    g, g_mb = run([args.train_step, model, "--batch", str(batch), "--size", f"{side}x{side}", "--steps",
                   str(args.train_steps), "--warmup", str(args.train_warmup), "--threads", str(args.threads), "--json"],
                  f"train_step {model}")
    t, t_mb = (None, None)
    if not args.no_torch:
        progress(" PyTorch ...")
        t, t_mb = run([TORCH_PYTHON, "-c", TORCH_SNIPPET, os.path.join(ROOT, "models", "onnx"), torch_name(name),
                       "train", str(batch), str(side), str(side), str(args.train_steps), str(args.train_warmup),
                       str(args.threads)], f"PyTorch training {name}")
    progress("\n")
    g_ms = g["median_ms"]
    gflops_per_s = g["gflops"] / (g_ms / 1e3)
    return {"model": name, "batch": batch, "size": [side, side], "graft_ms": g_ms, "graft_min_ms": g["min_ms"],
            "torch_ms": t and t["median_ms"], "graft_vs_torch": t and g_ms / t["median_ms"],
            "graft_gflop": g["gflops"], "graft_gflops_per_s": gflops_per_s,
            "peak_share": gflops_per_s / args.peak_gflops, "graft_mib": g_mb, "torch_mib": t_mb}


def fmt(v, spec, width):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}{spec}}"


def print_tables(result, args):
    print(f"\n{result['cpu']}, {args.threads} threads each; FP32 peak {args.peak_gflops:.0f} GFLOP/s "
          f"({result['peak_source']}); load average before {result['load_before']}, after {result['load_after']}")
    print(f"inference: median of {args.runs} runs after {args.warmup} warm-up; ratios are graft's time over the "
          f"other's (below 1: graft is faster); memory: peak resident MiB of each engine's process\n")
    print(f"{'model':<10} {'batch':>5} {'graft ms':>9} {'ort ms':>8} {'torch ms':>9} {'g/ort':>6} {'g/torch':>7} "
          f"{'graft img/s':>11} {'GFLOP/s':>8} {'of peak':>7} {'graft MiB':>9} {'ort MiB':>8} {'torch MiB':>9}")
    for r in result["inference"]:
        print(f"{r['model']:<10} {r['batch']:>5} {r['graft_ms']:>9.2f} {r['ort_ms']:>8.2f} {fmt(r['torch_ms'], '.2f', 9)} "
              f"{r['graft_vs_ort']:>6.2f} {fmt(r['graft_vs_torch'], '.2f', 7)} {r['graft_images_per_s']:>11.1f} "
              f"{r['graft_gflops_per_s']:>8.1f} {r['peak_share']:>7.0%} {r['graft_mib']:>9.0f} {r['ort_mib']:>8.0f} "
              f"{fmt(r['torch_mib'], '.0f', 9)}")
    if result["training"]:
        print(f"\ntraining step (forward, cross-entropy, backward, SGD with momentum): median of {args.train_steps} "
              f"steps after {args.train_warmup} warm-up\n")
        print(f"{'model':<12} {'batch':>5} {'size':>7} {'graft ms':>9} {'torch ms':>9} {'g/torch':>7} {'GFLOP/s':>8} "
              f"{'of peak':>7} {'graft MiB':>9} {'torch MiB':>9}")
        for r in result["training"]:
            size = f"{r['size'][0]}x{r['size'][1]}"
            print(f"{r['model']:<12} {r['batch']:>5} {size:>7} {r['graft_ms']:>9.1f} {fmt(r['torch_ms'], '.1f', 9)} "
                  f"{fmt(r['graft_vs_torch'], '.2f', 7)} {r['graft_gflops_per_s']:>8.1f} {r['peak_share']:>7.0%} "
                  f"{r['graft_mib']:>9.0f} {fmt(r['torch_mib'], '.0f', 9)}")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_average():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=MODELS, help="comma-separated export.py names ('' for none)")
    p.add_argument("--batches", default="1,8", help="batch 1 for latency, 8 for throughput")
    p.add_argument("--train", default=TRAIN, help="training runs as MODEL:BATCH:SIDE, comma-separated ('' for none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=20, help="timed runs per measurement (at least 20 for a median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=10, help="timed training steps")
    p.add_argument("--train-warmup", type=int, default=2)
    p.add_argument("--peak-gflops", type=float, default=None,
                   help="the FP32 peak for the share; measured by bench/peak when not given")
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="the build directory")
    p.add_argument("--models-dir", default=os.path.join(ROOT, "models", "onnx", "generated"))
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = p.parse_args()
    if args.runs < 20:
        p.error("--runs: a median wants at least 20 runs")
    args.graft = os.path.join(args.build, "tools", "graft")
    args.train_step = os.path.join(args.build, "bench", "train_step")
    peak_tool = os.path.join(args.build, "bench", "peak")
    for tool in (args.graft, args.train_step) + (() if args.peak_gflops else (peak_tool,)):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool}: not built (meson setup {args.build} && ninja -C {args.build}), or give --build DIR")

    result = {"cpu": cpu_name(), "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
              "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": load_average()}
    if args.peak_gflops:
        result["peak_source"] = "given"
    else:
        peak, _ = run([peak_tool, "--threads", str(args.threads), "--json"], "bench/peak")
        args.peak_gflops = peak["gflops"]
        result["peak_source"] = f"bench/peak, {peak['isa']} FMA"
    result["peak_gflops"] = args.peak_gflops
    result["inference"] = [row for name in filter(None, args.models.split(",")) for row in measure_inference(name, args)]
    result["training"] = [measure_training(spec, args) for spec in filter(None, args.train.split(","))]
    result["load_after"] = load_average()
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_tables(result, args)


if __name__ == "__main__":
    main()
