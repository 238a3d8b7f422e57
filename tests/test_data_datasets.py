"""Data sets and the loader (src/data/dataset*.c, loader.c, stats.c) through
tests/test_data_driver.c and `graft stats`, against independent readings of the
same files: torchvision's ImageFolder and MNIST readers, numpy, Pillow.

- Image folders: class order and sample order as ImageFolder's, pixels as Pillow's.
- IDX (plain and gzipped, and Debian's real Fashion-MNIST), CIFAR-10 and CIFAR-100
  binaries, segmentation pairs (palette, grey and 16-bit masks) and YOLO labels,
  decoded as numpy decodes them; masks and boxes through flips and padding.
- Splits, shuffling, class-balanced sampling, drop_last, and the loader's
  determinism: the same batches for any number of workers, and after seeking.
- graft stats against numpy's mean and std.
- Bad input, each refused with a message naming the file (and line) and a
  non-zero status: no images, an empty class folder, labels outside the class
  count, mixed sizes without a resize, a mask of another size, a short YOLO line,
  truncated IDX and CIFAR files; bad files skipped with a warning when asked.

usage: test_data_datasets.py TEST_DATA_DRIVER GRAFT   (Debian's /usr/bin/python3)
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from image_fixtures import photo, write_png  # noqa: E402  (exits 77 without numpy and Pillow)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

try:
    import torchvision
    from torchvision.datasets import mnist as tv_mnist
except ImportError as e:
    print(f"skipped: {e} (run with Debian's /usr/bin/python3; apt-get install python3-torchvision)")
    sys.exit(77)

FASHION = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
DRIVER = GRAFT = TMP = None
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def run(*args):
    return subprocess.run([*map(str, args)], capture_output=True, text=True)


def dataset(path, *opts):
    r = run(DRIVER, "dataset", path, *opts)
    if r.returncode:
        raise RuntimeError(f"dataset {path}: {r.stderr}")
    return json.loads(r.stdout)


def load(path, *opts, ok=True):
    """The batches a loader gives: a list of dicts with images, targets (numpy) and the JSON fields."""
    out = tempfile.mkdtemp(dir=TMP)
    r = run(DRIVER, "load", path, out, *opts)
    if ok and r.returncode:
        raise RuntimeError(f"load {path} {opts}: {r.stderr}")
    batches = Batches()
    for line in r.stdout.splitlines():
        b = json.loads(line)
        if "batches_per_epoch" in b:
            batches.per_epoch = b["batches_per_epoch"]
        elif "images" in b:
            b["x"] = np.fromfile(f"{out}/b{b['k']}.images", dtype=np.float32).reshape(b["images"])
            dtype = np.int64 if b["targets_dtype"] == "int64" else np.float32
            b["y"] = np.fromfile(f"{out}/b{b['k']}.targets", dtype=dtype).reshape(b["targets"])
            batches.append(b)
    shutil.rmtree(out)
    return (batches, r) if not ok else batches


class Batches(list):
    per_epoch = None


def expect_refused(what, args, *words):
    """Runs args; they must fail (status 1, no crash) with a message holding every word."""
    r = run(*args)
    msg = r.stderr.strip()
    check(r.returncode == 1, f"{what}: exit status {r.returncode}, expected 1 ({msg})")
    for w in words:
        check(str(w) in msg, f"{what}: the message does not say '{w}': {msg}")


def mkdirs(*parts):
    path = os.path.join(TMP, *parts)
    os.makedirs(path, exist_ok=True)
    return path


# ---- image folders ----

def make_folder(root, layout, size=(9, 7)):
    """layout: {class folder: [relative image paths]}; returns {path: pixels}."""
    pixels = {}
    rng = np.random.default_rng(11)
    for cls, files in layout.items():
        for rel in files:
            path = os.path.join(root, cls, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            w, h = size
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(path, format="PNG" if rel.lower().endswith(".png") else "JPEG", quality=95)
            pixels[path] = np.asarray(Image.open(path).convert("RGB"))
    return pixels


def test_folder():
    root = mkdirs("folder")
    layout = {
        "cat": ["b.png", "a.png", "Z.PNG", "sub/x.png", "sub-x/y.jpg", "sub/deeper/z.png"],
        "Dog": ["1.jpeg", "0.png"],
        "a b": ["only.png"],
        "\u00e9t\u00e9": ["x.png"],
        "bird": ["q.jpg"],
    }
    pixels = make_folder(root, layout)
    with open(os.path.join(root, "cat", "notes.txt"), "w") as f:
        f.write("not an image\n")
    ref = torchvision.datasets.ImageFolder(root, is_valid_file=lambda p: p.lower().endswith((".jpg", ".jpeg", ".png")))
    got = dataset(root)
    check(got["format"] == "folder" and got["names"] == ref.classes,
          f"folder classes {got['names']}, ImageFolder's {ref.classes}")
    check(got["paths"] == [p for p, _ in ref.samples], f"folder order {got['paths']}, ImageFolder's {ref.samples}")
    check(got["labels"] == [c for _, c in ref.samples], "folder labels differ from ImageFolder's")
    # Pixels, one sample a batch (sizes differ), as Pillow decodes them.
    batches = load(root, "--batch", 1, "--batches", len(ref.samples), "--workers", 2)
    for b, (path, label) in zip(batches, ref.samples):
        want = pixels[path].transpose(2, 0, 1)[None] / np.float32(255)
        check(np.abs(b["x"] - want).max() <= 1 / 255 + 1e-7 and b["y"].tolist() == [label],
              f"{path}: pixels or label differ from Pillow's")
    # Hidden folders and files are not samples (a checkpoint folder of a notebook, say).
    mkdirs("folder", ".ipynb_checkpoints")
    make_folder(root, {"cat": [".hidden.png"]})
    again = dataset(root)
    check(again["names"] == ref.classes and again["paths"] == got["paths"], "hidden names were taken as samples")
    check(dataset(root, "--classes", 7)["classes"] == 7, "n_classes larger than the folders is not kept")

    # Bad folders.
    empty = mkdirs("empty_class")
    make_folder(empty, {"a": ["x.png"]})
    mkdirs("empty_class", "b")
    expect_refused("an empty class folder", [GRAFT, "stats", empty], os.path.join(empty, "b"), "no JPEG or PNG")
    nothing = mkdirs("no_images", "a")
    with open(os.path.join(nothing, "readme.txt"), "w") as f:
        f.write("x")
    expect_refused("a folder with no images", [GRAFT, "stats", os.path.dirname(nothing)], "no_images", "no JPEG or PNG")
    loose = mkdirs("loose")
    Image.fromarray(photo(5, 5, 1)).save(os.path.join(loose, "x.png"))
    expect_refused("images without class folders", [GRAFT, "stats", loose], loose, "no class folders")
    expect_refused("more class folders than classes", [DRIVER, "dataset", root, "--classes", 3], root, "5 classes",
                   "3 given")
    expect_refused("a missing folder", [GRAFT, "stats", os.path.join(TMP, "nope")], "nope", "no such")

    # Mixed sizes: refused when batched as they are, fine after a resize.
    mixed = mkdirs("mixed")
    make_folder(mixed, {"a": ["big.png"]}, size=(12, 10))
    make_folder(mixed, {"b": ["small.png"]}, size=(8, 6))
    expect_refused("mixed sizes without a resize", [DRIVER, "load", mixed, TMP, "--batch", 2],
                   os.path.join(mixed, "a", "big.png"), os.path.join(mixed, "b", "small.png"), "one size", "resize")
    b = load(mixed, "--batch", 2, "--spec", "resize:5x4")[0]
    check(b["images"] == [2, 3, 5, 4], f"resized batch of {b['images']}")

    # A truncated file: refused naming it, or skipped with one warning and replaced by the next sample.
    bad = mkdirs("bad")
    make_folder(bad, {"a": ["0.jpg", "1.jpg", "2.jpg"], "b": ["3.jpg"]})
    victim = os.path.join(bad, "a", "1.jpg")
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)
    expect_refused("a truncated JPEG", [DRIVER, "load", bad, TMP, "--batch", 4], victim, "truncated")
    batches, r = load(bad, "--batch", 2, "--batches", 4, "--skip-bad", ok=False)
    check(r.returncode == 0, f"--skip-bad still fails: {r.stderr}")
    check(r.stderr.count("warning") == 1 and victim in r.stderr, f"--skip-bad warns {r.stderr.count('warning')} "
          f"times: {r.stderr}")
    check(batches[0]["samples"] == [0, 2] and batches[0]["y"].tolist() == [0, 0],
          f"the bad sample 1 is replaced by {batches[0]['samples']}, expected sample 2")
    r = run(GRAFT, "stats", "--format", "nonsense", bad)
    check(r.returncode == 2 and "unknown data format" in r.stderr, f"graft stats --format nonsense: {r.stderr}")
    r = run(GRAFT, "stats", "--help")
    check(r.returncode == 0 and "usage: graft stats" in r.stdout, "graft stats --help")
    r = run(GRAFT, "stats", bad, "--skip-bad", "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["pixels"] == 3 * 9 * 7, "graft stats --skip-bad counts the bad file")


# ---- IDX ----

def write_idx(path, arr, gz=False):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


def test_idx():
    d = mkdirs("idx")
    rng = np.random.default_rng(3)
    images, labels = rng.integers(0, 256, (37, 5, 7)), rng.integers(0, 4, 37)
    write_idx(f"{d}/train-images-idx3-ubyte.gz", images, gz=True)
    write_idx(f"{d}/train-labels-idx1-ubyte", labels)
    write_idx(f"{d}/t10k-images-idx3-ubyte", images[:5])
    write_idx(f"{d}/t10k-labels-idx1-ubyte.gz", labels[:5], gz=True)
    info = dataset(d)
    check(info["format"] == "idx" and info["size"] == 37 and info["channels"] == 1 and info["classes"] == 4,
          f"IDX data set: {info}")
    b = load(d, "--batch", 37)[0]
    check(np.array_equal(b["x"], (images / np.float32(255)).astype(np.float32)[:, None]), "IDX pixels differ")
    check(b["y"].tolist() == labels.tolist(), "IDX labels differ")
    b = load(d, "--batch", 5, "--subset", "t10k", "--channels", 3)[0]
    check(b["images"] == [5, 3, 5, 7] and np.array_equal(b["x"][:, 0], b["x"][:, 2]), "IDX as RGB")
    check(dataset(f"{d}/t10k-images-idx3-ubyte")["size"] == 5, "an IDX images file given by path")

    bad = mkdirs("idx_bad")
    with open(f"{d}/train-labels-idx1-ubyte", "rb") as f:
        good_labels = f.read()
    raw = bytes([0, 0, 8, 3]) + (37).to_bytes(4, "big") + (5).to_bytes(4, "big") + (7).to_bytes(4, "big")
    with open(f"{bad}/train-images-idx3-ubyte", "wb") as f:
        f.write(raw + images.astype(np.uint8).tobytes()[:500])
    with open(f"{bad}/train-labels-idx1-ubyte", "wb") as f:
        f.write(good_labels)
    expect_refused("a truncated IDX file", [GRAFT, "stats", bad], f"{bad}/train-images-idx3-ubyte", "truncated",
                   "of the 37")
    with open(f"{d}/train-images-idx3-ubyte.gz", "rb") as f:
        packed = f.read()
    os.remove(f"{bad}/train-images-idx3-ubyte")
    with open(f"{bad}/train-images-idx3-ubyte.gz", "wb") as f:
        f.write(packed[: len(packed) // 2])
    expect_refused("a truncated gzipped IDX file", [GRAFT, "stats", bad], f"{bad}/train-images-idx3-ubyte.gz",
                   "truncated")
    expect_refused("IDX labels outside the classes", [DRIVER, "dataset", d, "--classes", 3],
                   f"{d}/train-labels-idx1-ubyte", "outside the 3 classes")
    write_idx(f"{bad}/train-images-idx3-ubyte.gz", images[:30], gz=True)
    expect_refused("IDX counts that differ", [GRAFT, "stats", bad], "30 images", "37 labels")


def test_fashion_mnist():
    if not os.path.isdir(FASHION):
        print(f"  {FASHION} is missing (apt-get install dataset-fashion-mnist): real IDX files not tested")
        return
    plain = mkdirs("fashion")
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        with gzip.open(f"{FASHION}/{name}.gz") as src, open(f"{plain}/{name}", "wb") as dst:
            shutil.copyfileobj(src, dst)
    images = tv_mnist.read_image_file(f"{plain}/train-images-idx3-ubyte").numpy()
    labels = tv_mnist.read_label_file(f"{plain}/train-labels-idx1-ubyte").numpy()
    info = dataset(FASHION)
    check(info["size"] == 60000 and info["classes"] == 10, f"Fashion-MNIST: {info['size']} samples")
    check(info["labels"] == labels.tolist(), "Fashion-MNIST labels differ from torchvision's reader")
    check(dataset(FASHION, "--subset", "t10k")["size"] == 10000, "Fashion-MNIST t10k")
    b = load(FASHION, "--batch", 256)[0]
    check(np.array_equal(b["x"][:, 0], (images[:256] / np.float32(255)).astype(np.float32)),
          "Fashion-MNIST pixels differ from torchvision's reader")
    r = run(GRAFT, "stats", FASHION, "--json")
    s = json.loads(r.stdout)
    levels = np.arange(256) / 255.0
    hist = np.bincount(images.ravel(), minlength=256) / images.size
    mean = float((hist * levels).sum())
    std = float(np.sqrt((hist * (levels - mean) ** 2).sum()))
    check(abs(s["mean"][0] - mean) < 1e-7 and abs(s["std"][0] - std) < 1e-7,
          f"graft stats: mean {s['mean']}, std {s['std']}; numpy {mean}, {std}")
    # normalize:auto uses those statistics: the first batches come out near mean 0, std 1.
    b = load(FASHION, "--batch", 2000, "--spec", "normalize:auto")[0]
    check(abs(b["x"].mean()) < 0.05 and abs(b["x"].std() - 1) < 0.05, f"normalize:auto gives mean {b['x'].mean()}")


# ---- CIFAR ----

def write_cifar(path, labels, pixels, coarse=None):
    """Records: [coarse,] label, then 3072 bytes of R, G, B planes."""
    with open(path, "wb") as f:
        for k in range(len(labels)):
            head = bytes([coarse[k], labels[k]]) if coarse is not None else bytes([labels[k]])
            f.write(head + pixels[k].transpose(2, 0, 1).tobytes())


def test_cifar():
    rng = np.random.default_rng(4)
    d = mkdirs("cifar", "cifar-10-batches-bin")
    px = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    lab = rng.integers(0, 10, 30)
    write_cifar(f"{d}/data_batch_1.bin", lab[:12], px[:12])
    write_cifar(f"{d}/data_batch_2.bin", lab[12:20], px[12:20])
    write_cifar(f"{d}/test_batch.bin", lab[20:], px[20:])
    with open(f"{d}/batches.meta.txt", "w") as f:
        f.write("\n".join(f"class{k}" for k in range(10)) + "\n\n")
    top = os.path.dirname(d)
    info = dataset(top)
    check(info["format"] == "cifar10" and info["size"] == 20 and info["names"][3] == "class3", f"CIFAR-10: {info}")
    b = load(top, "--batch", 20)[0]
    check(np.array_equal(b["x"], (px[:20].transpose(0, 3, 1, 2) / np.float32(255)).astype(np.float32)),
          "CIFAR-10 pixels differ")
    check(b["y"].tolist() == lab[:20].tolist(), "CIFAR-10 labels differ")
    b = load(top, "--batch", 10, "--subset", "test", "--channels", 1)[0]
    grey = np.stack([np.asarray(Image.fromarray(p).convert("L")) for p in px[20:]])
    check(np.array_equal(b["x"][:, 0], (grey / np.float32(255)).astype(np.float32)), "CIFAR-10 grey is not Pillow's L")
    check(dataset(f"{d}/data_batch_2.bin")["size"] == 8, "one CIFAR batch file given by path")

    h = mkdirs("cifar100")
    coarse, fine = rng.integers(0, 20, 6), rng.integers(0, 100, 6)
    write_cifar(f"{h}/train.bin", fine, px[:6], coarse=coarse)
    with open(f"{h}/fine_label_names.txt", "w") as f:
        f.write("\n".join(f"fine{k}" for k in range(100)))
    info = dataset(h)
    check(info["format"] == "cifar100" and info["classes"] == 100 and info["labels"] == fine.tolist(),
          f"CIFAR-100 fine labels: {info['labels']}")

    bad = mkdirs("cifar_bad")
    with open(f"{d}/data_batch_1.bin", "rb") as f:
        data = f.read()
    with open(f"{bad}/data_batch_1.bin", "wb") as f:
        f.write(data[:-100])
    expect_refused("a truncated CIFAR file", [GRAFT, "stats", bad], f"{bad}/data_batch_1.bin", "3073-byte",
                   "truncated")
    write_cifar(f"{bad}/data_batch_1.bin", [3, 12], px[:2])
    expect_refused("a CIFAR-10 label above 9", [GRAFT, "stats", bad], f"{bad}/data_batch_1.bin", "record 1",
                   "label 12")


# ---- segmentation ----

def test_segmentation():
    root = mkdirs("seg")
    rng = np.random.default_rng(6)
    masks = {}
    kinds = [("train", "a", "palette"), ("train", "b", "grey"), ("val", "c", "grey16"), ("more", "d", "palette4"),
             ("more", "e", "interlaced2")]
    for sub, stem, kind in kinds:
        img_dir, mask_dir = mkdirs("seg", "images", sub), mkdirs("seg", "masks", sub)
        Image.fromarray(photo(12, 16, len(masks))).save(f"{img_dir}/{stem}.{'jpg' if stem == 'b' else 'png'}")
        m = rng.integers(0, 3, (12, 16)).astype(np.uint8)
        m[0, :4] = 255
        masks[stem] = m
        if kind == "palette":  # indices, whatever colours the palette gives them
            p = Image.fromarray(m, "P")
            p.putpalette([(k * 37) % 256 for k in range(768)])
            p.save(f"{mask_dir}/{stem}.png")
        elif kind == "grey":
            Image.fromarray(m, "L").save(f"{mask_dir}/{stem}.png")
        elif kind == "grey16":
            write_png(f"{mask_dir}/{stem}.png", m.astype(np.uint16)[..., None], 0, 16)
        else:  # 4-bit palette with transparency, or 2-bit grey, interlaced: still the stored values
            m[m == 255] = 3
            masks[stem] = m
            depth = 4 if kind == "palette4" else 2
            palette = rng.integers(0, 256, (16, 3)) if depth == 4 else None
            write_png(f"{mask_dir}/{stem}.png", m[..., None], 3 if depth == 4 else 0, depth, palette=palette,
                      trns=[0, 128] if depth == 4 else None, interlaced=depth == 2)
    with open(f"{root}/classes.txt", "w") as f:
        f.write("background\nroad\ncar\n")
    info = dataset(root)
    check(info["format"] == "segmentation" and info["size"] == 5 and info["names"] == ["background", "road", "car"],
          f"segmentation: {info}")
    b = load(root, "--batch", 2, "--subset", "more", "--classes", 4)[0]
    check(np.array_equal(b["y"], np.stack([masks["d"], masks["e"]])), "4-bit palette / 2-bit interlaced masks differ")
    b = load(root, "--batch", 2, "--subset", "train")[0]
    check(b["targets_dtype"] == "int64" and b["targets"] == [2, 12, 16], f"mask targets {b['targets']}")
    check(np.array_equal(b["y"], np.stack([masks["a"], masks["b"]])), "palette/grey masks differ from their indices")
    b = load(root, "--batch", 1, "--subset", "val", "--spec", "hflip:1,random-crop:12x16:2")[0]
    check(b["images"] == [1, 3, 12, 16], "segmentation batch shape")
    y = b["y"][0]
    pad_rows = [r for r in range(12) if (y[r] == 255).all()]
    flipped = masks["c"][:, ::-1]
    # where the crop landed: find it by matching the flipped mask inside a 255 frame
    framed = np.pad(flipped, 2, constant_values=255)
    hits = [(i, j) for i in range(5) for j in range(5) if np.array_equal(framed[i:i + 12, j:j + 16], y)]
    check(len(hits) >= 1, f"the mask after hflip and padded crop is not the flipped mask in a 255 frame ({pad_rows})")

    # Bad pairs.
    bad = mkdirs("seg_bad")
    mkdirs("seg_bad", "images")
    mkdirs("seg_bad", "masks")
    Image.fromarray(photo(12, 16, 1)).save(f"{bad}/images/x.png")
    Image.fromarray(np.zeros((10, 16), np.uint8), "L").save(f"{bad}/masks/x.png")
    expect_refused("a mask of another size", [DRIVER, "load", bad, TMP, "--batch", 1], f"{bad}/masks/x.png",
                   f"{bad}/images/x.png", "16x10", "16x12")
    Image.fromarray(np.full((12, 16), 5, np.uint8), "L").save(f"{bad}/masks/x.png")
    expect_refused("a mask value outside the classes", [DRIVER, "load", bad, TMP, "--batch", 1, "--classes", 3],
                   f"{bad}/masks/x.png", "value 5", "3 classes")
    Image.fromarray(photo(12, 16, 1)).save(f"{bad}/images/y.png")
    expect_refused("an image without a mask", [GRAFT, "stats", bad], f"{bad}/images/y.png", "no mask")
    os.remove(f"{bad}/images/y.png")
    Image.fromarray(photo(12, 16, 2)).save(f"{bad}/masks/x.png")
    expect_refused("an RGB mask", [DRIVER, "load", bad, TMP, "--batch", 1], f"{bad}/masks/x.png", "grey or palette")


# ---- YOLO ----

def test_yolo():
    root = mkdirs("yolo")
    mkdirs("yolo", "images")
    mkdirs("yolo", "labels")
    boxes = {"a": [(0, 0.5, 0.5, 0.2, 0.4), (2, 0.25, 0.75, 0.3, 0.2)], "b": [], "c": [(1, 0.6, 0.3, 0.5, 0.5)]}
    for stem, bs in boxes.items():
        Image.fromarray(photo(20 + len(stem), 30, 1)).save(f"{root}/images/{stem}.png")
        if stem != "b":  # no labels file: no boxes
            with open(f"{root}/labels/{stem}.txt", "w") as f:
                f.write("\n".join(" ".join(map(str, b)) for b in bs) + "\n\n")
    with open(f"{root}/classes.txt", "w") as f:
        f.write("person\ncar\ndog\n")
    info = dataset(root)
    check(info["format"] == "yolo" and info["classes"] == 3, f"YOLO: {info}")
    b = load(root, "--batch", 3, "--spec", "resize:32x32")[0]
    want = [(i, *bx) for i, stem in enumerate("abc") for bx in boxes[stem]]
    check(b["targets_dtype"] == "float32" and b["targets"] == [3, 6], f"YOLO targets {b['targets']}")
    check(np.allclose(b["y"], np.array(want, np.float32), atol=1e-6), f"YOLO rows {b['y'].tolist()}, expected {want}")
    b = load(root, "--batch", 1, "--seek", "0:1", "--spec", "resize:32x32")[0]
    check(b["targets"] == [0, 6] and b["samples"] == [1], f"an image without boxes gives targets {b['targets']}")
    b = load(root, "--batch", 3, "--spec", "resize:32x32,hflip:1")[0]
    flipped = [(i, c, 1 - cx, cy, w, h) for i, c, cx, cy, w, h in want]
    check(np.allclose(b["y"], np.array(flipped, np.float32), atol=1e-6), "YOLO boxes do not follow a flip")

    bad_lines = [
        ("0 0.5 0.5 0.2\n", ":1:", "4 numbers"),
        ("0 0.5 0.5 0.2 0.2\n\n2 0.5 0.5 abc 0.1\n", ":3:", "'abc' is not a number"),
        ("5 0.5 0.5 0.2 0.2\n", ":1:", "class 5 is outside the 3 classes"),
        ("0 1.5 0.5 0.2 0.2\n", ":1:", "cx 1.5"),
    ]
    for text, where, words in bad_lines:
        with open(f"{root}/labels/c.txt", "w") as f:
            f.write(text)
        expect_refused(f"a YOLO label line {text.strip()!r}", [GRAFT, "stats", root], f"{root}/labels/c.txt{where}",
                       words)


# ---- splits and the loader ----

def make_idx_set(name, labels, h=6, w=5):
    d = mkdirs(name)
    rng = np.random.default_rng(len(labels))
    write_idx(f"{d}/train-images-idx3-ubyte", rng.integers(0, 256, (len(labels), h, w)))
    write_idx(f"{d}/train-labels-idx1-ubyte", np.asarray(labels))
    return d


def test_split():
    d = make_idx_set("split", list(range(41)))  # each sample's label is its index
    val = dataset(d, "--split", "0.25:7:val")["labels"]
    train = dataset(d, "--split", "0.25:7:train")["labels"]
    check(len(val) == 10 and len(train) == 31, f"split sizes {len(val)} + {len(train)}")
    check(sorted(val + train) == list(range(41)), "the split sides overlap or miss samples")
    check(val == sorted(val) and train == sorted(train), "a split side is not in the data set's order")
    b = load(d, "--batch", 10, "--split", "0.25:7:val")[0]
    check(b["y"].tolist() == val, "a split side's loader does not give its samples")
    check(dataset(d, "--split", "0.25:7:val")["labels"] == val and dataset(d, "--split", "0.25:8:val")["labels"] != val,
          "the split seed does not decide the split")
    expect_refused("a split that leaves nothing", [DRIVER, "dataset", d, "--split", "0.001:1:val"], "empty side")


def test_loader():
    d = make_idx_set("loader", [k % 4 for k in range(50)], h=12, w=12)
    spec = "random-crop:10:2,hflip,rotate:15,color-jitter:0.3:0.3:0"
    common = ["--batch", 8, "--shuffle", "--seed", 99, "--spec", spec, "--batches", 15]
    ref = load(d, *common, "--workers", 1, "--prefetch", 1)
    for workers, prefetch in [(3, 0), (4, 9), (2, 2)]:
        other = load(d, *common, "--workers", workers, "--prefetch", prefetch)
        same = all(np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]) for a, b in zip(ref, other))
        check(same, f"{workers} workers (prefetch {prefetch}) give other batches than 1 worker")
    per_epoch = ref.per_epoch
    check(per_epoch == 7, f"50 samples in batches of 8: {per_epoch} batches an epoch, expected 7")
    positions = [(b["epoch"], b["index"]) for b in ref]
    check(positions == [(k // 7, k % 7) for k in range(15)], f"positions {positions}")
    check([tuple(b["position"]) for b in ref] == positions, "gf_loader_position is not the next batch's place")
    epochs = [sum((b["samples"] for b in ref[e * 7:(e + 1) * 7]), []) for e in (0, 1)]
    check(all(sorted(e) == list(range(50)) for e in epochs) and epochs[0] != epochs[1],
          "an epoch is not a new permutation of the data set")
    check(ref[6]["images"][0] == 2, "the last batch of an epoch is not the short one")
    # Seeking (a resumed checkpoint) gives the batches that came next.
    resumed = load(d, *common[:-2], "--batches", 5, "--workers", 3, "--seek", "1:3")
    check(all(np.array_equal(a["x"], b["x"]) for a, b in zip(resumed, ref[10:15])), "seeking to 1:3 gives other batches")
    expect_refused("seeking past the epoch", [DRIVER, "load", d, TMP, "--seek", "0:7", "--batch", 8], "from 0 to 6")
    # Data parallel shards: shard k of 3 takes batches k, k + 3, ... of the same epoch order, the same
    # images (augmented by their place in the epoch), and as many batches as every other shard.
    shards = [load(d, *common[:-2], "--batches", 4, "--shard", f"{k}:3") for k in range(3)]
    check(all(s.per_epoch == 2 for s in shards), f"7 batches over 3 shards: {[s.per_epoch for s in shards]}, expected 2")
    for k, s in enumerate(shards):
        want = [ref[e * 7 + i * 3 + k] for e in (0, 1) for i in (0, 1)]
        same = all(np.array_equal(a["x"], b["x"]) and a["samples"] == b["samples"] for a, b in zip(s, want))
        check(same, f"shard {k} of 3 does not give batches {k} and {k + 3} of each epoch")
    expect_refused("a shard past the count", [DRIVER, "load", d, TMP, "--shard", "3:3"], "shard 3 of 3")
    expect_refused("more shards than batches", [DRIVER, "load", d, TMP, "--batch", 8, "--shard", "0:8"],
                   "fewer batches than the 8 shards")
    # Batches in page-locked memory (a GPU trainer's loader; ordinary memory where none can be
    # pinned, as on a machine without a GPU) are the same batches.
    pinned = load(d, *common, "--workers", 3, "--pinned", 1)
    check(len(pinned) == 15 and all(np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]) and
                                    a["samples"] == b["samples"] for a, b in zip(pinned, ref)),
          "a pinned loader gives other batches")
    # drop_last.
    dl = load(d, "--batch", 8, "--drop-last", "--batches", 7)
    check(dl.per_epoch == 6 and all(b["images"][0] == 8 for b in dl), "drop_last")
    check(dl[6]["epoch"] == 1, "after the last full batch the next epoch starts")
    # Without shuffle: the data set's order.
    check(load(d, "--batch", 8)[0]["samples"] == list(range(8)), "without shuffle the order is not the data set's")

    # Class-balanced sampling of an unbalanced set: every class about a quarter of the draws.
    labels = [0] * 170 + [1] * 20 + [2] * 8 + [3] * 2
    u = make_idx_set("unbalanced", labels)
    batches = load(u, "--batch", 200, "--balanced", "--seed", 5, "--batches", 10)
    counts = np.bincount(np.concatenate([b["y"] for b in batches]), minlength=4)
    expected = counts.sum() / 4
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    check(chi2 < 16.3, f"balanced draws per class {counts.tolist()} (chi-square {chi2:.1f}, 3 dof, p < 0.001)")
    plain = np.bincount(load(u, "--batch", 200, "--shuffle")[0]["y"], minlength=4)
    check(plain.tolist() == [170, 20, 8, 2], f"shuffle alone changes the class counts: {plain.tolist()}")
    seg = mkdirs("seg")
    expect_refused("balanced segmentation", [DRIVER, "load", seg, TMP, "--balanced"], "classification")


def timed(f):
    import time
    t = time.time()
    f()
    print(f"  {f.__name__}: {time.time() - t:.1f} s")


def main():
    global DRIVER, GRAFT, TMP
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    DRIVER, GRAFT = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="graft-datasets-") as TMP:
        timed(test_folder)
        timed(test_idx)
        timed(test_fashion_mnist)
        timed(test_cifar)
        timed(test_segmentation)
        timed(test_yolo)
        timed(test_split)
        timed(test_loader)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("data sets and loader: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
