"""Transforms (src/data/augment.c, color.c, pipeline.c) against torchvision on PIL
images, through tests/test_data_driver.c.

- Each step with its parameters given, against torchvision.transforms.functional
  with the same parameters: resize, crops with padding, flip, rotation, affine,
  brightness, contrast, saturation, hue; masks against the same functions with
  NEAREST (padding 255); boxes against the bounding box of the transformed,
  rasterised box.
- Whole pipelines with their random draws: graft's generator (splitmix64,
  src/data/rng.h) is replayed here and fed to torchvision's own get_params through
  torch.empty/rand/randint/randperm, so torchvision's RandomResizedCrop, RandomCrop,
  RandomRotation, RandomAffine and ColorJitter pick the parameters from the same
  numbers graft drew; the images must agree within one grey level.
- The ImageNet evaluation preprocessing on real photos from Debian packages (those
  installed or in tools/photos.py's cache) and on generated ones, to floats.
- Malformed specs are refused, naming the step.

usage: test_data_transforms.py TEST_DATA_DRIVER   (Debian's /usr/bin/python3: torch, torchvision, PIL)
"""
import os
import re
import subprocess
import sys
import tempfile
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from image_fixtures import photo  # noqa: E402  (exits 77 without numpy and Pillow)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

try:
    import torch
    import torchvision.transforms as T
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode
except ImportError as e:
    print(f"skipped: {e} (run with Debian's /usr/bin/python3; apt-get install python3-torchvision)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from photos import PHOTOS  # noqa: E402  (the real photos Debian packages ship)

DRIVER = None
TMP = None
failures = []
BILINEAR, NEAREST = InterpolationMode.BILINEAR, InterpolationMode.NEAREST


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def driver(*args, ok=True):
    r = subprocess.run([DRIVER, *map(str, args)], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise RuntimeError(f"test_data_driver {' '.join(map(str, args))}: {r.stderr}")
    return r


def read_pnm(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.match(rb"P([56])\s+(\d+)\s+(\d+)\s+255\s", data)
    w, h = int(m.group(2)), int(m.group(3))
    pixels = np.frombuffer(data[m.end():], dtype=np.uint8)
    return pixels.reshape(h, w, 3) if m.group(1) == b"6" else pixels.reshape(h, w)


def read_boxes(path):
    with open(path) as f:
        return [list(map(float, line.split())) for line in f if line.strip()]


def max_diff(a, b):
    a, b = np.asarray(a, dtype=np.int32), np.asarray(b, dtype=np.int32)
    return -1 if a.shape != b.shape else int(np.abs(a - b).max(initial=0))


def save(img, name):
    path = os.path.join(TMP, name)
    img.save(path)
    return path


def run_op(op, image_path, params, grey=False, mask=None, boxes=None):
    out = os.path.join(TMP, "out")
    extra = (["--grey"] if grey else []) + (["--mask", mask] if mask else []) + (["--boxes", boxes] if boxes else [])
    driver("op", op, image_path, out, *extra, *params)
    result = {"image": read_pnm(out + ".pnm"), "boxes": read_boxes(out + ".boxes.txt")}
    if mask:
        result["mask"] = read_pnm(out + ".mask.pgm")
    return result


# ---- steps with their parameters given ----

def functional_cases(w, h):
    """(op, params, torchvision on a PIL image, on a mask) for an image of w x h."""
    def crop(top, left, ch, cw):
        def mask_ref(m):  # padding is 255 in masks: pad with it, then crop
            a = np.pad(np.asarray(m), 2 * max(w, h), constant_values=255)
            p = 2 * max(w, h)
            return a[top + p:top + p + ch, left + p:left + p + cw]
        return ("crop", [top, left, ch, cw], lambda i: F.crop(i, top, left, ch, cw), mask_ref)

    def affine(angle, t, scale, shear):
        return ("affine", [angle, t[0], t[1], scale, shear[0], shear[1]],
                lambda i: F.affine(i, angle, list(t), scale, list(shear), interpolation=BILINEAR),
                lambda m: F.affine(m, angle, list(t), scale, list(shear), interpolation=NEAREST, fill=255))

    def rotate(angle):
        return ("rotate", [angle], lambda i: F.rotate(i, angle, interpolation=BILINEAR),
                lambda m: F.rotate(m, angle, interpolation=NEAREST, fill=255))

    def resize(rw, rh):
        return ("resize", [rw, rh], lambda i: F.resize(i, [rh, rw], interpolation=BILINEAR),
                lambda m: F.resize(m, [rh, rw], interpolation=NEAREST))

    return [
        resize(w // 2, h // 3), resize(w * 2 + 1, h + 7), resize(17, 5),
        crop(3, 5, h // 2, w // 2), crop(-4, -6, h + 3, w + 9), crop(h - 5, w - 3, 11, 13),
        ("hflip", [], F.hflip, F.hflip),
        rotate(0), rotate(90), rotate(180), rotate(-37.5), rotate(12.25), rotate(359),
        affine(15.0, (3, -2), 1.1, (5.0, 0.0)), affine(-30.0, (0, 0), 0.8, (0.0, 10.0)),
        affine(0.0, (4, 1), 1.3, (0.0, 0.0)), affine(0.0, (0, 0), 1.0, (-20.0, 7.0)),
    ]


COLOR_CASES = [
    ("brightness", 0.35, F.adjust_brightness), ("brightness", 1.6, F.adjust_brightness),
    ("contrast", 0.5, F.adjust_contrast), ("contrast", 1.75, F.adjust_contrast),
    ("saturation", 0.0, F.adjust_saturation), ("saturation", 0.6, F.adjust_saturation),
    ("saturation", 1.9, F.adjust_saturation),
    ("hue", 0.1, F.adjust_hue), ("hue", -0.3, F.adjust_hue), ("hue", 0.5, F.adjust_hue),
]


def test_functional(name, img):
    grey = img.mode == "L"
    w, h = img.size
    path = save(img, f"{name}.png")
    rng = np.random.default_rng(5)
    mask = Image.fromarray(rng.integers(0, 21, (h, w), dtype=np.uint8), "L")
    mask_path = save(mask, f"{name}_mask.png")
    for op, params, ref, mask_ref in functional_cases(w, h):
        got = run_op(op, path, params, grey=grey, mask=mask_path)
        d = max_diff(got["image"], np.asarray(ref(img)))
        check(0 <= d <= 1, f"{name}: {op} {params}: differs from torchvision by {d}")
        d = max_diff(got["mask"], np.asarray(mask_ref(mask)))
        check(d == 0, f"{name}: {op} {params} on the mask: differs from torchvision's NEAREST by {d}")
    for op, f, ref in COLOR_CASES:
        got = run_op(op, path, [f], grey=grey)
        d = max_diff(got["image"], np.asarray(ref(img, f)))
        check(0 <= d <= 1, f"{name}: {op} {f}: differs from torchvision by {d}")


def test_boxes():
    """Boxes against the bounding box of the box drawn as a mask and moved by Pillow."""
    w, h = 80, 60
    path = save(Image.fromarray(photo(h, w, 7)), "boxes.png")
    boxes = [(0, 20, 10, 50, 40), (3, 5, 30, 25, 58), (1, 60, 2, 79, 20)]  # class, x0, y0, x1, y1 in pixels
    box_file = os.path.join(TMP, "boxes.txt")
    with open(box_file, "w") as f:
        for c, x0, y0, x1, y1 in boxes:
            f.write(f"{c} {(x0 + x1) / 2 / w} {(y0 + y1) / 2 / h} {(x1 - x0) / w} {(y1 - y0) / h}\n")
    cases = [
        ("hflip", [], F.hflip),
        ("crop", [8, -4, 40, 70], lambda m: F.crop(m, 8, -4, 40, 70)),
        ("rotate", [25], lambda m: F.rotate(m, 25, interpolation=NEAREST)),
        ("rotate", [-90], lambda m: F.rotate(m, -90, interpolation=NEAREST)),
        ("affine", [10, 5, -3, 0.9, 12, 0], lambda m: F.affine(m, 10, [5, -3], 0.9, [12, 0], interpolation=NEAREST)),
        ("resize", [40, 90], lambda m: F.resize(m, [90, 40], interpolation=NEAREST)),
    ]
    for op, params, move in cases:
        got = run_op(op, path, params, boxes=box_file)["boxes"]
        out_w, out_h = (params[0], params[1]) if op == "resize" else (params[3], params[2]) if op == "crop" else (w, h)
        expected = []
        for c, x0, y0, x1, y1 in boxes:
            m = np.zeros((h, w), np.uint8)
            m[y0:y1, x0:x1] = 1
            ys, xs = np.nonzero(np.asarray(move(Image.fromarray(m, "L"))))
            if len(xs):
                expected.append((c, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        check(len(got) == len(expected), f"boxes {op} {params}: {len(got)} boxes, expected {len(expected)}")
        for g, (c, x0, y0, x1, y1) in zip(got, expected):
            gx0, gx1 = (g[1] - g[3] / 2) * out_w, (g[1] + g[3] / 2) * out_w
            gy0, gy1 = (g[2] - g[4] / 2) * out_h, (g[2] + g[4] / 2) * out_h
            err = max(abs(gx0 - x0), abs(gx1 - x1), abs(gy0 - y0), abs(gy1 - y1))
            # a rotated box's corners are sharp: the pixels inside reach a little less far
            check(g[0] == c and err <= (2.0 if op in ("rotate", "affine") else 1.0), f"boxes {op} {params}: class {g[0]} at {gx0:.1f},{gy0:.1f},{gx1:.1f},"
                  f"{gy1:.1f}; the moved box covers {c} at {x0},{y0},{x1},{y1}")
    # A crop that leaves under 10% of a box drops it; 2 pixels or less wide, too.
    got = run_op("crop", path, [0, 0, 60, 23], boxes=box_file)["boxes"]  # box 0 keeps 3 x 30 of 30 x 30
    check([b[0] for b in got] == [3], f"crop to x < 23 keeps classes {[b[0] for b in got]}, expected [3]")
    got = run_op("crop", path, [0, 0, 60, 61], boxes=box_file)["boxes"]  # box 1 keeps 1 x 18
    check([b[0] for b in got] == [0, 3], f"crop to x < 61 keeps classes {[b[0] for b in got]}, expected [0, 3]")


# ---- random pipelines, replayed through torchvision ----

MASK64 = (1 << 64) - 1


class Replay:
    """src/data/rng.h: splitmix64, uniform = top 53 bits / 2^53."""

    def __init__(self, seed):
        self.state = seed

    def uniform(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return ((z ^ (z >> 31)) >> 11) * 2.0 ** -53

    def below(self, n):
        return int(self.uniform() * n)


class ReplayedTorch:
    """torch.empty(1).uniform_, torch.rand, torch.randint and torch.randperm drawing from a
    Replay, for the duration of a with block, so torchvision's get_params run on graft's numbers."""

    def __init__(self, replay):
        self.r = replay

    def __enter__(self):
        r = self.r

        class Empty:
            def uniform_(self, lo, hi):
                lo, hi = float(lo), float(hi)
                return torch.tensor([lo + (hi - lo) * r.uniform()], dtype=torch.float64)

        def randperm(n):  # any uniform permutation would do; graft's is Fisher-Yates
            order = list(range(n))
            for k in range(n - 1, 0, -1):
                j = r.below(k + 1)
                order[k], order[j] = order[j], order[k]
            return torch.tensor(order)

        self.patches = [
            mock.patch.object(torch, "empty", lambda *a, **k: Empty()),
            mock.patch.object(torch, "rand", lambda *a, **k: torch.tensor([r.uniform()], dtype=torch.float64)),
            mock.patch.object(torch, "randint", lambda lo, hi, size: torch.tensor([lo + r.below(hi - lo)])),
            mock.patch.object(torch, "randperm", randperm),
        ]
        for p in self.patches:
            p.start()

    def __exit__(self, *exc):
        for p in self.patches:
            p.stop()


def torchvision_step(step, mask=False):
    """The torchvision transform of a spec step; for a mask, by nearest neighbour and
    padded with 255 (colour steps, the last in a spec, are left out for masks)."""
    name, *p = step.split(":")
    p = [float(x) for x in p]
    how, fill = (NEAREST, 255) if mask else (BILINEAR, 0)
    if name == "random-resized-crop":
        scale = tuple(p[1:3]) if len(p) >= 3 else (0.08, 1.0)
        ratio = tuple(p[3:5]) if len(p) == 5 else (3 / 4, 4 / 3)
        return T.RandomResizedCrop(int(p[0]), scale=scale, ratio=ratio, interpolation=how)
    if name == "random-crop":
        return T.RandomCrop(int(p[0]), padding=int(p[1]) if len(p) > 1 else None, fill=fill)
    if name == "hflip":
        return T.RandomHorizontalFlip(p[0] if p else 0.5)
    if name == "rotate":
        return T.RandomRotation(p[0], interpolation=how, fill=fill)
    if name == "affine":
        translate = (p[1], p[1]) if len(p) >= 2 and p[1] > 0 else None
        scale = (p[2], p[3]) if len(p) >= 4 else None
        shear = p[4] if len(p) == 5 and p[4] > 0 else None
        return T.RandomAffine(p[0], translate=translate, scale=scale, shear=shear, interpolation=how, fill=fill)
    if name == "color-jitter":
        return None if mask else T.ColorJitter(*p)
    if name == "resize":
        return T.Resize(int(p[0]), interpolation=how)
    if name == "center-crop":
        return T.CenterCrop(int(p[0]))
    raise ValueError(step)


def torchvision_pipeline(spec, mask=False):
    return T.Compose([t for t in (torchvision_step(s, mask) for s in spec.split(",")) if t is not None])


def test_rrc_params():
    """The crop RandomResizedCrop picks, seed by seed, including the fallback after 10 tries."""
    cases = [(97, 61, "random-resized-crop:32"), (300, 20, "random-resized-crop:16"),
             (1000, 10, "random-resized-crop:8"), (10, 400, "random-resized-crop:8:0.5:1:0.9:1.1"),
             (64, 64, "random-resized-crop:24:0.9:1:3:4")]
    for w, h, spec in cases:
        path = save(Image.fromarray(np.arange(w * h, dtype=np.uint32).reshape(h, w).astype(np.uint8), "L"), "rrc.png")
        for seed in range(12):
            out = os.path.join(TMP, "rrc")
            driver("transform", spec.replace(f":{spec.split(':')[1]}", f":{h}x{w}", 1), seed, path, out, "--grey")
            rrc = torchvision_step(spec)
            with ReplayedTorch(Replay(seed)):
                i, j, ch, cw = rrc.get_params(Image.open(path), rrc.scale, rrc.ratio)
            # The crop resized to the image's own size keeps the window visible in the pixels.
            want = np.asarray(F.resized_crop(Image.open(path), i, j, ch, cw, [h, w], interpolation=BILINEAR))
            d = max_diff(read_pnm(out + ".pnm"), want)
            check(0 <= d <= 1, f"{spec} on {w}x{h}, seed {seed}: not torchvision's crop {i},{j},{ch}x{cw} (by {d})")


PIPELINES = [
    "random-resized-crop:48,hflip",
    "random-resized-crop:40:0.3:1:0.5:2,hflip:0.7",
    "random-crop:50:6,hflip",
    "rotate:30",
    "affine:20:0.1:0.8:1.2:15",
    "affine:0:0:0.7:1.3",
    "color-jitter:0.4:0.4:0.4:0.1",
    "color-jitter:0.8:0:0.5",
    "resize:40,center-crop:36,random-crop:32:4,hflip,rotate:10,color-jitter:0.3:0.3:0.3:0.05",
]


def test_pipelines(name, img):
    """Images, and masks with them, through random pipelines."""
    path = save(img, f"{name}_pipe.png")
    mask = Image.fromarray(np.random.default_rng(9).integers(0, 30, img.size[::-1], dtype=np.uint8), "L")
    mask_path = save(mask, f"{name}_pipe_mask.png")
    grey = ["--grey"] if img.mode == "L" else []
    for spec in PIPELINES:
        for seed in (1, 2, 3, 12345678901234567):
            out = os.path.join(TMP, "pipe")
            driver("transform", spec, seed, path, out, *grey, "--mask", mask_path)
            with ReplayedTorch(Replay(seed)):
                want = np.asarray(torchvision_pipeline(spec)(img))
            with ReplayedTorch(Replay(seed)):  # the same draws, so the same geometry
                want_mask = np.asarray(torchvision_pipeline(spec, mask=True)(mask))
            d = max_diff(read_pnm(out + ".pnm"), want)
            check(0 <= d <= 1, f"{name}: '{spec}' seed {seed}: differs from torchvision by {d}")
            d = max_diff(read_pnm(out + ".mask.pgm"), want_mask)
            check(d == 0, f"{name}: '{spec}' seed {seed}: the mask differs from torchvision's by {d}")
    # The same seed gives the same sample; another seed another one.
    outs = []
    for seed in (7, 7, 8):
        driver("transform", PIPELINES[-1], seed, path, os.path.join(TMP, f"again{len(outs)}"), *grey)
        outs.append(read_pnm(os.path.join(TMP, f"again{len(outs)}.pnm")))
    check(max_diff(outs[0], outs[1]) == 0, f"{name}: seed 7 twice gives two different samples")
    check(outs[0].shape != outs[2].shape or max_diff(outs[0], outs[2]) != 0, f"{name}: seeds 7 and 8 agree")


def test_center_crop():
    """center-crop pads as torchvision pads when the image is smaller (masks with 255)."""
    img = Image.fromarray(photo(41, 57, 8))
    mask = np.random.default_rng(2).integers(0, 20, (41, 57), dtype=np.uint8)
    path, mask_path = save(img, "cc.png"), save(Image.fromarray(mask, "L"), "cc_mask.png")
    for h, w in [(30, 40), (50, 40), (41, 80), (60, 90), (40, 56)]:
        out = os.path.join(TMP, "cc")
        driver("transform", f"center-crop:{h}x{w}", 0, path, out, "--mask", mask_path)
        d = max_diff(read_pnm(out + ".pnm"), np.asarray(F.center_crop(img, [h, w])))
        check(d == 0, f"center-crop {h}x{w} differs from torchvision's by {d}")
        # torchvision pads with 0: shift the classes up by one to tell padding apart
        want = np.asarray(F.center_crop(Image.fromarray(mask + 1, "L"), [h, w])).astype(np.int32) - 1
        want[want < 0] = 255
        d = max_diff(read_pnm(out + ".mask.pgm"), want)
        check(d == 0, f"center-crop {h}x{w} of the mask differs from torchvision's by {d}")


# ---- evaluation preprocessing to floats ----

def real_photos():
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "graft-demo")
    found = []
    for _, path in PHOTOS:
        for p in (path, os.path.join(cache, path.lstrip("/"))):
            if os.path.exists(p):
                found.append(p)
                break
    return found


def test_eval_preprocessing(path):
    spec = "resize:256,center-crop:224,normalize:imagenet"
    out = os.path.join(TMP, "eval")
    driver("transform", spec, 0, path, out)
    img = Image.open(path).convert("RGB")
    mid = T.Compose([T.Resize(256), T.CenterCrop(224)])(img)
    d = max_diff(read_pnm(out + ".pnm"), np.asarray(mid))
    check(0 <= d <= 1, f"{path}: resize 256 + center crop 224 differs from torchvision by {d} levels")
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    want = T.Normalize(mean, std)(T.ToTensor()(mid)).numpy()
    got = np.fromfile(out + ".chw", dtype=np.float32).reshape(want.shape)
    err = float(np.abs(got - want).max())
    check(err <= 1 / 255 / min(std) + 1e-5, f"{path}: normalised floats differ by {err} (more than one level)")
    print(f"  {os.path.basename(path)} {img.size[0]}x{img.size[1]}: resize+crop within {d} level(s), floats {err:.2g}")


def test_specs():
    bad = [
        ("rsize:256", "unknown step"), ("resize:0", "the size"), ("resize:256,", "a comma"),
        ("random-resized-crop:224:0.5", "wrong number"), ("rotate:abc", "numbers"),
        ("normalize:imagenet,hflip", "last step"), ("normalize:0.5", "wrong number"),
        ("normalize:0.5:0", "standard deviation of 0"), ("color-jitter:0.4:0.4:0.4:0.7", "hue"),
        ("hflip:1.5", "probability"), ("affine:10:2", "translation"), ("rotate:15:", "empty parameter"),
        ("normalize:imag", "numbers"), ("center-crop:3x", "the size"),
    ]
    img = save(Image.fromarray(photo(20, 30, 1)), "spec.png")
    for spec, words in bad:
        r = driver("transform", spec, 0, img, os.path.join(TMP, "bad"), ok=False)
        check(r.returncode != 0 and spec.split(",")[0] in r.stderr and words in r.stderr,
              f"spec '{spec}': expected a refusal naming the step and saying '{words}', got: {r.stderr.strip()}")
    # grey images with three means fail at conversion, saying what to do
    r = driver("transform", "normalize:imagenet", 0, img, os.path.join(TMP, "bad"), "--grey", ok=False)
    check(r.returncode != 0 and "grey-to-rgb" in r.stderr, f"imagenet stats on a grey image: {r.stderr.strip()}")
    r = driver("transform", "grey-to-rgb,normalize:imagenet", 0, img, os.path.join(TMP, "g"), "--grey")
    check(read_pnm(os.path.join(TMP, "g.pnm")).shape == (20, 30, 3), "grey-to-rgb does not give three channels")


def main():
    global DRIVER, TMP
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    DRIVER = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="graft-transforms-") as TMP:
        generated = [("rgb", Image.fromarray(photo(61, 97, 3))), ("grey", Image.fromarray(photo(45, 38, 4)).convert("L"))]
        photos = real_photos()
        if photos:  # a real photo, at a size that keeps the test fast
            generated.append(("photo", Image.open(photos[0]).convert("RGB").resize((150, 113), Image.BILINEAR)))
        for name, img in generated:
            test_functional(name, img)
            test_pipelines(name, img)
        test_boxes()
        test_center_crop()
        test_rrc_params()
        test_specs()
        tall = save(Image.fromarray(photo(300, 203, 4)), "tall.png")
        test_eval_preprocessing(tall)
        for p in photos:
            test_eval_preprocessing(p)
        if not photos:
            print("  no real photos found (apt-get install python-matplotlib-data, or run tools/photos.sh once)")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("data transforms: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
