"""Report images (src/train/plot*.c, overlay.c), decoded with Pillow and checked pixel by pixel.

- line charts: the PNG decodes at the asked size; the frame sits where the layout says;
  the axis ranges hold the data on 1/2/5 x 10^k steps; each series' colour (matplotlib's
  tab10) runs within 2 pixels of where its values map, through every column between its
  points, and is absent from a NaN gap and from outside the plot area but for the
  legend; tick marks sit at the tick values, with numbers beside them;
- confusion heat maps: a cell's darkness follows its count (the largest count the darkest
  cell, zero white), with the count printed in it, labels beside rows and columns;
- mask overlays: every pixel equals floor((1 - a) p + a colour + 0.5) with PASCAL VOC's
  colour map computed here, ignored pixels untouched;
- box overlays: the outlines' pixels are exactly where graft.h says, the inside and the
  outside untouched, the label above;
- PNG writing: the round trip is exact, an existing file is replaced by a rename (a new
  inode, no temporary left), and failures name the file.

usage: test_plot.py TEST_PLOT_BINARY   (Debian's /usr/bin/python3, for Pillow)
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

PROG = sys.argv[1]
RNG = np.random.default_rng(3)
TAB10 = [(0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e), (0x2c, 0xa0, 0x2c), (0xd6, 0x27, 0x28), (0x94, 0x67, 0xbd),
         (0x8c, 0x56, 0x4b), (0xe3, 0x77, 0xc2), (0x7f, 0x7f, 0x7f), (0xbc, 0xbd, 0x22), (0x17, 0xbe, 0xcf)]
TMP = tempfile.mkdtemp(prefix="graft-plot-")
results = {"passed": 0, "failed": 0}


def report(title, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}", flush=True)


def run(args, stdin=""):
    proc = subprocess.run([PROG] + [str(a) for a in args], input=stdin, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr.strip()


def load(path):
    with Image.open(path) as im:
        return im.mode, np.array(im.convert("RGB")).astype(np.int64)


def voc_colour(c):
    r = g = b = 0
    for j in range(8):
        r |= ((c >> 0) & 1) << (7 - j)
        g |= ((c >> 1) & 1) << (7 - j)
        b |= ((c >> 2) & 1) << (7 - j)
        c >>= 3
    return np.array([r, g, b])


# ---- line charts ----

def chart(name, series, width=0, height=0, title="-", x_label="-", y_label="-"):
    """Draws series [(name, x or None, y)]; returns (rc, layout dict, pixels, stderr)."""
    spec = [str(len(series))]
    for s_name, x, y in series:
        spec.append(f"{s_name} {len(y)} {0 if x is None else 1}")
        if x is not None:
            spec.append(" ".join(repr(float(v)) for v in x))
        spec.append(" ".join(repr(float(v)) for v in y))
    path = os.path.join(TMP, name + ".png")
    rc, out, err = run(["lines", path, width, height, title, x_label, y_label], "\n".join(spec) + "\n")
    if rc != 0:
        return rc, None, None, err
    v = out.split()
    at = dict(zip(["left", "top", "right", "bottom"], map(int, v[1:5])))
    at.update(zip(["x_min", "x_max", "x_step", "y_min", "y_max", "y_step"], map(float, v[5:11])))
    mode, px = load(path)
    at["mode"] = mode
    return rc, at, px, err


def to_col(at, x):
    return at["left"] + (x - at["x_min"]) / (at["x_max"] - at["x_min"]) * (at["right"] - at["left"])


def to_row(at, y):
    return at["bottom"] - (y - at["y_min"]) / (at["y_max"] - at["y_min"]) * (at["bottom"] - at["top"])


def is_nice(step):
    m = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return any(abs(m - f) < 1e-9 for f in (1, 2, 5))


def colour_mask(px, rgb):
    return np.all(px == np.array(rgb), axis=2)


def check_series_path(title, at, px, x, y, colour, drawn_over=()):
    """Every column between two finite neighbours holds the colour (or that of a series
    drawn over it) within 2 px of the segment's rows there, and none of its own colour
    farther; returns (ok, detail)."""
    own = colour_mask(px, colour)
    covered = own.copy()
    for other in drawn_over:
        covered |= colour_mask(px, other)
    worst, checked = 0.0, 0
    for i in range(len(x) - 1):
        if not (np.isfinite(y[i]) and np.isfinite(y[i + 1])):
            continue
        c0, c1 = to_col(at, x[i]), to_col(at, x[i + 1])
        r0, r1 = to_row(at, y[i]), to_row(at, y[i + 1])
        for col in range(int(math.ceil(c0)) + 1, int(math.floor(c1))):
            lo, hi = sorted([r0 + (r1 - r0) * (col - 1 - c0) / (c1 - c0), r0 + (r1 - r0) * (col + 1 - c0) / (c1 - c0)])
            rows = np.arange(px.shape[0])
            band = (rows >= lo - 2) & (rows <= hi + 2)
            if not covered[band, col].any():
                return False, f"column {col}: no pixel of the line in rows {lo - 2:.1f}..{hi + 2:.1f}"
            mine = np.nonzero(own[at["top"]:at["bottom"] + 1, col])[0] + at["top"]
            if mine.size:
                worst = max(worst, lo - mine.min(), mine.max() - hi)
                if mine.min() < lo - 2 or mine.max() > hi + 2:
                    return False, f"column {col}: rows {mine.min()}..{mine.max()}, expected {lo:.1f}..{hi:.1f} +- 2"
            checked += 1
    return True, f"{checked} columns within {max(worst, 0):.1f} px"


def check_line_charts():
    epochs = np.arange(1, 21)
    train = 2.0 - 1.5 * (epochs - 1) / 19                 # a straight line from 2 to 0.5
    val = 2.2 * np.exp(-(epochs - 1) / 8) + 0.3
    val[7:10] = np.nan                                     # epochs 8..10 missing
    rc, at, px, err = chart("loss", [("train", None, train), ("val_loss", None, val)], title="loss",
                            x_label="epoch", y_label="loss")
    if rc != 0:
        report("line chart: loss", False, err)
        return
    report("line chart: the PNG decodes, RGB 640x400 (the default)", at["mode"] == "RGB" and px.shape == (400, 640, 3),
           f"{at['mode']} {px.shape[1]}x{px.shape[0]}")
    black = np.all(px == 0, axis=2)
    l, t, r, b = at["left"], at["top"], at["right"], at["bottom"]
    frame = (black[t - 1:b + 2, l - 1].all() and black[t - 1:b + 2, r + 1].all() and black[t - 1, l - 1:r + 2].all()
             and black[b + 1, l - 1:r + 2].all())
    report("line chart: a black frame just outside the plot area", frame, f"area {l}..{r} x {t}..{b}")
    y_lo, y_hi = min(np.nanmin(train), np.nanmin(val)), max(np.nanmax(train), np.nanmax(val))
    ranges = (at["x_min"] <= 1 and at["x_max"] >= 20 and at["y_min"] <= y_lo and at["y_max"] >= y_hi and
              19 / (at["x_max"] - at["x_min"]) > 0.5 and (y_hi - y_lo) / (at["y_max"] - at["y_min"]) > 0.5 and
              is_nice(at["x_step"]) and is_nice(at["y_step"]) and at["x_step"] >= 1 and
              abs(round(x_steps := (at["x_max"] - at["x_min"]) / at["x_step"]) - x_steps) < 1e-9)
    report("line chart: axis ranges hold the data on 1/2/5 x 10^k steps (whole for epochs)", ranges,
           f"x {at['x_min']}..{at['x_max']} by {at['x_step']}, y {at['y_min']}..{at['y_max']} by {at['y_step']}")
    ok, detail = check_series_path("train", at, px, epochs, train, TAB10[0], drawn_over=[TAB10[1]])
    report("line chart: the train series runs where its values map", ok, detail)
    ok, detail = check_series_path("val", at, px, epochs, val, TAB10[1])
    report("line chart: the val series runs where its values map", ok, detail)
    gap = colour_mask(px, TAB10[1])[t:b + 1, int(to_col(at, 7)) + 3:int(to_col(at, 11)) - 2]
    report("line chart: nothing drawn in the NaN gap", not gap.any(), f"{int(gap.sum())} pixels there")
    for k in range(2):
        m = colour_mask(px, TAB10[k])
        outside = m.copy()
        outside[t:b + 1, l:r + 1] = False
        outside[:, r + 2:] = False
        legend = m[t:b + 1, r + 2:].sum()
        report(f"line chart: series {k}'s colour only inside the plot area and in the legend",
               not outside.any() and legend >= 10, f"{int(outside.sum())} pixels astray, {int(legend)} in the legend")
    dark = px.sum(axis=2) < 200
    n_y = int(round((at["y_max"] - at["y_min"]) / at["y_step"])) + 1
    ticks_ok = True
    for i in range(n_y):
        row = int(round(to_row(at, at["y_min"] + i * at["y_step"])))  # +-1: rounding x.5 either way
        ticks_ok &= black[row - 1:row + 2, l - 5:l - 1].all(axis=1).any() and dark[row - 4:row + 5, :l - 6].any()
    n_x = int(round((at["x_max"] - at["x_min"]) / at["x_step"])) + 1
    for i in range(n_x):
        col = int(round(to_col(at, at["x_min"] + i * at["x_step"])))
        ticks_ok &= black[b + 2:b + 6, col - 1:col + 2].all(axis=0).any() and dark[b + 7:b + 17, col - 8:col + 9].any()
    report("line chart: tick marks at every tick value, each with its number", ticks_ok,
           f"{n_x} x ticks, {n_y} y ticks")
    report("line chart: title, x and y labels drawn", dark[:t - 4, :].any() and dark[b + 18:, l:r].any() and
           dark[t:b, :12].any())

    # The learning rate: small numbers, x given, a custom size.
    steps = np.arange(0, 500, 10, dtype=np.float64)
    lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * steps / 500))
    rc, at, px, err = chart("lr", [("lr", steps, lr)], 800, 300, title="learning_rate", x_label="step")
    ok = rc == 0 and px.shape == (300, 800, 3)
    if ok:
        ok, detail = check_series_path("lr", at, px, steps, lr, TAB10[0])
        ok = ok and at["y_max"] >= 1e-3 and at["y_max"] <= 2e-3 and at["y_min"] <= lr.min()
    else:
        detail = err
    report("line chart: a learning-rate curve at 800x300, on its own scale", ok, detail)

    # A flat series and a lone point still show.
    rc, at, px, err = chart("flat", [("flat", None, [0.7] * 5), ("one", [3.0], [0.75])])
    ok = rc == 0 and at["y_min"] <= 0.7 < 0.75 <= at["y_max"]
    if ok:
        row, col = to_row(at, 0.75), to_col(at, 3)
        near = colour_mask(px, TAB10[1])[int(row) - 2:int(row) + 4, int(col) - 2:int(col) + 4]
        ok = near.any() and colour_mask(px, TAB10[0])[int(to_row(at, 0.7)) - 2:int(to_row(at, 0.7)) + 4].any()
    report("line chart: a flat series and a lone point", ok, err)

    # Ten series, each in its colour.
    series = [(f"s{k}", None, np.linspace(0, 1, 8) + k) for k in range(10)]
    rc, at, px, err = chart("ten", series, 900, 500)
    ok = rc == 0 and all(colour_mask(px, TAB10[k])[at["top"]:at["bottom"] + 1, at["left"]:at["right"] + 1].sum() > 50
                         for k in range(10))
    report("line chart: ten series, each in its tab10 colour", ok, err)

    for name, series, size, needle in [
            ("none", [], (0, 0), "0 series; expected 1 to 10"),
            ("eleven", [(f"s{k}", None, [1.0, 2.0]) for k in range(11)], (0, 0), "11 series"),
            ("nan", [("a", None, [float("nan")] * 3)], (0, 0), "no series has a finite value"),
            ("small", [("a", None, [1.0, 2.0])], (200, 100), "200x100 pixels; expected at least 240x160"),
            ("x_nan", [("a", [1.0, float("nan")], [1.0, 2.0])], (0, 0), "has x nan at point 1")]:
        rc, _, _, err = chart("bad_" + name, series, *size)
        report(f"line chart refused: {name}", rc == 2 and needle in err and
               not os.path.exists(os.path.join(TMP, "bad_" + name + ".png")), err)


# ---- confusion heat maps ----

def check_confusion():
    counts = np.array([[50, 2, 0, 1, 0], [3, 41, 5, 0, 0], [0, 7, 38, 0, 2], [60, 0, 1, 12, 0], [0, 0, 4, 0, 29]])
    n = counts.shape[0]
    labels = ["cat", "dog", "bird", "horse_x", "ship"]
    path = os.path.join(TMP, "confusion.png")
    stdin = " ".join(map(str, counts.ravel())) + "\n" + " ".join(labels) + "\n"
    rc, out, err = run(["confusion", path, n, 0, "confusion_matrix"], stdin)
    if rc != 0:
        report("confusion heat map", False, err)
        return
    left, top, cell = map(int, out.split()[1:4])
    _, px = load(path)
    h, w, _ = px.shape
    report("confusion heat map: decodes, the grid inside the image", top + n * cell < h and left + n * cell < w and
           cell >= 12, f"{w}x{h}, cells of {cell} px at ({left}, {top})")
    corner = np.array([[px[top + i * cell + 1, left + j * cell + 1] for j in range(n)] for i in range(n)])
    lum = corner @ np.array([0.299, 0.587, 0.114])
    flat_c, flat_l = counts.ravel(), lum.ravel()
    order_ok = all((flat_l[a] < flat_l[b]) == (flat_c[a] > flat_c[b]) for a in range(n * n) for b in range(n * n)
                   if flat_c[a] != flat_c[b])
    darkest = np.unravel_index(np.argmin(lum), lum.shape)
    report("confusion heat map: the largest count (60, off the diagonal) is the darkest cell",
           darkest == np.unravel_index(np.argmax(counts), counts.shape), f"darkest cell {darkest}")
    report("confusion heat map: darkness strictly follows the counts; zero is white", order_ok and
           np.all(corner[counts == 0] == 255), f"luminance {np.round(lum, 1).tolist()}")
    whole_cell = all(np.all(px[top + i * cell:top + (i + 1) * cell, left + j * cell:left + (j + 1) * cell] ==
                            corner[i, j], axis=2).mean() > 0.6 for i in range(n) for j in range(n))
    text_in = all(np.any(np.abs(px[top + i * cell + 2:top + (i + 1) * cell - 2,
                                   left + j * cell + 2:left + (j + 1) * cell - 2] - corner[i, j]).sum(axis=2) > 200)
                  for i in range(n) for j in range(n))
    report("confusion heat map: each cell one colour with its count printed in it", whole_cell and text_in)
    dark = px.sum(axis=2) < 200
    rows_labelled = all(dark[top + i * cell:top + (i + 1) * cell, 12:left - 2].any() for i in range(n))
    cols_labelled = all(dark[top + n * cell + 2:, left + j * cell:left + (j + 1) * cell].any() for j in range(n))
    report("confusion heat map: every row and column labelled", rows_labelled and cols_labelled)

    rc, out, err = run(["confusion", path, n, 1, "-"], stdin)
    left, top, cell = map(int, out.split()[1:4])
    _, px = load(path)
    shares = counts / counts.sum(axis=1, keepdims=True)
    lum = np.array([[px[top + i * cell + 1, left + j * cell + 1] @ np.array([0.299, 0.587, 0.114]) for j in range(n)]
                    for i in range(n)])
    darkest = np.unravel_index(np.argmin(lum), lum.shape)
    report("confusion heat map, normalised: the largest share (ship as ship, 0.88) is the darkest",
           rc == 0 and darkest == np.unravel_index(np.argmax(shares), shares.shape), f"darkest cell {darkest}")

    big = RNG.integers(0, 100, size=(40, 40))
    rc, out, err = run(["confusion", path, 40, 0, "-"], " ".join(map(str, big.ravel())) + "\n" + "- " * 40 + "\n")
    left, top, cell = map(int, out.split()[1:4])
    _, px = load(path)
    lum = np.array([[px[top + i * cell + 1, left + j * cell + 1] @ np.array([0.299, 0.587, 0.114])
                     for j in range(40)] for i in range(40)])
    report("confusion heat map: 40 classes, the largest count still the darkest", rc == 0 and
           big.ravel()[np.argmin(lum)] == big.max(), f"cells of {cell} px")
    rc, _, err = run(["confusion", path, 2, 0, "-"], "1 -2 3 4\n- -\n")
    report("confusion heat map refused: a negative count", rc == 2 and "cell (0, 1) holds -2" in err, err)


# ---- overlays ----

def write_png(pixels, name):
    path = os.path.join(TMP, name)
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)
    return path


def check_mask_overlay():
    h, w = 37, 53
    img = RNG.integers(0, 256, size=(h, w, 3))
    mask = RNG.integers(0, 8, size=(h, w))
    mask[RNG.random(size=(h, w)) < 0.2] = 255
    src, out = write_png(img, "mask_in.png"), os.path.join(TMP, "mask_out.png")
    for alpha in (0.5, 0.35, 1.0):
        rc, _, err = run(["mask", src, out, alpha, 255], f"{h} {w}\n" + " ".join(map(str, mask.ravel())) + "\n")
        if rc != 0:
            report(f"mask overlay, alpha {alpha}", False, err)
            continue
        _, got = load(out)
        colours = np.array([voc_colour(c) for c in range(256)])[np.minimum(mask, 255)]
        want = np.where((mask == 255)[..., None], img, np.floor((1 - alpha) * img + alpha * colours + 0.5))
        diff = np.abs(got - want)
        report(f"mask overlay, alpha {alpha}: every pixel as the VOC palette blend, ignored ones untouched",
               got.shape == img.shape and diff.max() == 0, f"max diff {diff.max()}, {int((diff > 0).sum())} off")
    rc, _, err = run(["mask", src, out, 0.5, 255], f"{h} {w + 1}\n" + "0 " * (h * (w + 1)) + "\n")
    report("mask overlay refused: a mask of another size", rc == 2 and "expected int64 [37, 53] like the image" in err,
           err)


def check_box_overlay():
    h, w = 150, 200
    img = np.full((h, w, 3), 128)
    img[:, :, 2] = 90
    src, out = write_png(img, "boxes_in.png"), os.path.join(TMP, "boxes_out.png")
    # Box 1, class 1: columns 40..99, rows 30..89 (x0 = 0.2 * 200, x1 = 0.5 * 200 - 1).
    # Box 2, class 3, a ground-truth box (no score): columns 150..199 (clipped), rows 100..139.
    # Box 3, class 2: a box entirely outside (not drawn).
    boxes = [(0, 1, 0.87, 0.35, 0.4, 0.3, 0.4), (0, 3, -1, 0.875, 0.8, 0.25, 0.8 / 3), (0, 2, 0.5, 1.5, 1.5, 0.1, 0.1)]
    stdin = "2 person cat\n3\n" + "\n".join(" ".join(repr(float(v)) for v in b) for b in boxes) + "\n"
    rc, _, err = run(["boxes", src, out], stdin)
    if rc != 0:
        report("box overlay", False, err)
        return
    _, got = load(out)
    checks = []
    for (x0, x1, y0, y1, cls) in [(40, 99, 30, 89, 1), (150, 199, 100, 139, 3)]:
        colour = voc_colour(cls)
        ring = np.zeros((h, w), bool)
        ring[y0:y1 + 1, x0:x1 + 1] = True
        ring[y0 + 2:y1 - 1, x0 + 2:x1 - 1] = False
        outline = np.all(got[ring] == colour, axis=1).all()
        inside = np.all(got[y0 + 2:y1 - 1, x0 + 2:x1 - 1] == img[0, 0], axis=2).all()
        around = [got[y1 + 1, x0:x1 + 1], got[y0:y1 + 1, x0 - 1]] + ([got[y0:y1 + 1, x1 + 1]] if x1 + 1 < w else [])
        outside = all(np.all(a == img[0, 0], axis=1).all() for a in around)
        label = got[y0 - 10:y0, x0:x0 + 30]
        labelled = np.all(label == colour, axis=2).sum() > 50 and np.all(label == 255, axis=2).sum() > 10
        checks.append((outline, inside, outside, labelled))
        report(f"box overlay: class {cls}'s outline exactly at columns {x0}..{x1}, rows {y0}..{y1}, 2 px wide",
               outline and inside and outside,
               f"outline {outline}, inside untouched {inside}, outside untouched {outside}")
        report(f"box overlay: class {cls}'s label above the box, white on the class colour", labelled)
    allowed = np.zeros((h, w), bool)
    allowed[30:90, 40:100] = allowed[20:30, 40:140] = True      # box 1 and its label
    allowed[100:140, 150:200] = allowed[90:100, 150:200] = True  # box 2 and its label
    changed = np.any(got != img, axis=2)
    report("box overlay: nothing drawn but the two boxes and their labels (the third is outside)",
           not (changed & ~allowed).any(), f"{int((changed & ~allowed).sum())} pixels changed elsewhere")
    rc, _, err = run(["boxes", src, out], "0\n1\n0 -1 0.5 0.5 0.5 0.1 0.1\n")
    report("box overlay refused: a negative class", rc == 2 and "box 0 has class -1" in err, err)


# ---- PNG writing ----

def check_png_writing():
    path = os.path.join(TMP, "save.png")
    for w, h, c in [(17, 9, 3), (5, 31, 1)]:
        pixels = RNG.integers(0, 256, size=(h, w, c))
        rc, _, err = run(["save", path, w, h, c], " ".join(map(str, pixels.ravel())))
        with Image.open(path) as im:
            got = np.array(im)
            mode = im.mode
        report(f"PNG round trip {w}x{h}x{c}", rc == 0 and mode == ("RGB" if c == 3 else "L") and
               np.array_equal(got.reshape(h, w, c), pixels), err)
    before = os.stat(path).st_ino
    keep = os.path.join(TMP, "keep")
    os.link(path, keep)  # the old file lives on under another name only if it was replaced, not rewritten
    old = open(keep, "rb").read()
    rc, _, err = run(["save", path, 3, 2, 3], " ".join(["7"] * 18))
    leftovers = [f for f in os.listdir(TMP) if ".tmp." in f]
    report("PNG writing replaces the file by a rename: a new inode, the old file whole, no temporary left",
           rc == 0 and os.stat(path).st_ino != before and open(keep, "rb").read() == old and not leftovers,
           f"leftovers {leftovers}")
    missing = os.path.join(TMP, "no", "such", "dir", "x.png")
    rc, _, err = run(["save", missing, 2, 2, 3], " ".join(["1"] * 12))
    report("PNG writing into a missing directory fails, naming the file", rc == 2 and f"cannot save '{missing}'" in err,
           err)
    rc, _, err = run(["save", path, 2, 2, 4], " ".join(["1"] * 16))
    report("PNG writing of a 4-channel image is refused", rc == 2 and "expected 1 or 3 channels" in err and
           open(path, "rb").read() != b"", err)


def main():
    check_line_charts()
    check_confusion()
    check_mask_overlay()
    check_box_overlay()
    check_png_writing()
    if results["failed"]:
        print(f"{results['passed']} passed, {results['failed']} failed (the images are in {TMP})")
        sys.exit(1)
    shutil.rmtree(TMP)
    print(f"{results['passed']} passed, 0 failed")


if __name__ == "__main__":
    main()
