"""Evaluation metrics (src/train/metrics*.c, detect*.c) against independent references.

- classification: scikit-learn's accuracy_score, top_k_accuracy_score, confusion_matrix
  and precision_recall_fscore_support (zero_division=0; per class, macro, weighted), on
  random logits, on data with classes never predicted or never true, and on tied logits
  (against numpy's argmax and the ranking rule graft.h states);
- segmentation: pixel accuracy, per-class IoU and mean IoU (np.nanmean) written here in
  numpy, for logits and class maps, with ignored pixels; and a case worked by hand;
- boxes: IoU against torchvision.ops.box_iou, NMS against torchvision.ops.nms applied
  per (image, class) group;
- YOLOv3 decoding against the formulas of graft.h written here in torch (with
  torchvision's NMS), and a one-cell case worked by hand;
- mAP@0.5: a case worked by hand (duplicates, a miss, VOC's taken-best-match rule, a
  class with no ground truth), and random data sets against a numpy VOC implementation
  written here;
- bad inputs refused with messages that name what is wrong, adding nothing.

Every add goes in batches, so accumulation is tested too.

usage: test_metrics.py TEST_METRICS_BINARY   (Debian's /usr/bin/python3: sklearn, torch)
"""
import math
import subprocess
import sys

import numpy as np
import torch
import torchvision
from sklearn import metrics as skm

PROG = sys.argv[1]
RNG = np.random.default_rng(11)
results = {"passed": 0, "failed": 0}


def report(title, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}", flush=True)


def tensor_text(a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        kind, values = "f32", " ".join(repr(float(v)) for v in a.astype(np.float32).ravel())
    else:
        kind, values = "i64", " ".join(str(int(v)) for v in a.ravel())
    return f"{kind} {a.ndim} {' '.join(str(d) for d in a.shape)} {values}\n"


def run(args, tensors):
    """graft's output lines as {name: [values]} (det lines as a list), and add-errors."""
    proc = subprocess.run([PROG] + [str(a) for a in args], input="".join(tensor_text(t) for t in tensors),
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    out, dets, errors = {}, [], []
    for line in proc.stdout.splitlines():
        if line.startswith("add-error: "):
            errors.append(line[len("add-error: "):])
            continue
        name, *values = line.split()
        if name == "det":
            dets.append([float(v) for v in values])
        else:
            out[name] = [float(v) for v in values]
    out["det"] = np.array(dets).reshape(-1, 7)
    return out, errors


def run_error(args, tensors):
    proc = subprocess.run([PROG] + [str(a) for a in args], input="".join(tensor_text(t) for t in tensors),
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr.strip()


def close(got, want, tol=1e-12):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, f"{got.size} values, expected {want.size}"
    both_nan = np.isnan(got) & np.isnan(want)
    err = np.where(both_nan, 0, np.abs(got - want))
    bad = ~(err <= tol * np.maximum(1, np.abs(np.nan_to_num(want))))
    if bad.any():
        i = int(np.argmax(bad))
        return False, f"at {i}: {got.ravel()[i]!r} vs {want.ravel()[i]!r}"
    return True, f"max err {float(np.max(err, initial=0)):.1e}"


# ---- classification ----

def sklearn_classification(logits, labels, k):
    c = logits.shape[1]
    pred = np.argmax(logits, axis=1)
    # sklearn takes a binary problem's scores as the probability of class 1 alone.
    scores = logits if c > 2 else 1 / (1 + np.exp(logits[:, 0].astype(np.float64) - logits[:, 1]))
    per = skm.precision_recall_fscore_support(labels, pred, labels=range(c), zero_division=0, average=None)
    macro = skm.precision_recall_fscore_support(labels, pred, zero_division=0, average="macro")[:3]
    weighted = skm.precision_recall_fscore_support(labels, pred, zero_division=0, average="weighted")[:3]
    return {
        "accuracy": [skm.accuracy_score(labels, pred)],
        "top_k": [skm.top_k_accuracy_score(labels, scores, k=k, labels=range(c))],
        "confusion": skm.confusion_matrix(labels, pred, labels=range(c)).ravel(),
        "support": per[3], "precision": per[0], "recall": per[1], "f1": per[2],
        "macro": macro, "weighted": weighted,
    }


def compare_report(title, got, want):
    for name, values in want.items():
        ok, detail = close(got[name], values)
        if not ok:
            report(title, False, f"{name}: {detail}")
            return
    report(title, True, ", ".join(f"{n} {np.round(got[n][0], 4)}" for n in ("accuracy", "top_k", "macro")))


def check_classification():
    for n, c, k, batch in [(517, 7, 3, 64), (300, 10, 5, 1), (50, 2, 1, 50), (999, 4, 2, 128)]:
        logits = RNG.normal(size=(n, c)).astype(np.float32)
        labels = RNG.integers(0, c, size=n)
        logits[np.arange(n), labels] += 0.8  # better than chance
        got, _ = run(["classify", c, k, batch], [logits, labels])
        compare_report(f"classification vs sklearn: N={n} C={c} top-{k}, batches of {batch}", got,
                       sklearn_classification(logits, labels, k))

    # Class 4 is true but never predicted (precision 0 by zero_division=0), class 5 neither
    # true nor predicted (left out of the macro mean, as sklearn's default labels do), class
    # 3 predicted but never true (recall 0).
    n, c = 200, 6
    labels = RNG.choice([0, 1, 2, 4], size=n)
    logits = RNG.normal(size=(n, c)).astype(np.float32)
    logits[:, 4] = logits[:, 5] = -50
    logits[np.arange(n), np.where(labels == 4, 3, labels)] += 1.0
    got, _ = run(["classify", c, 2, 33], [logits, labels])
    want = sklearn_classification(logits, labels, 2)
    compare_report("classification vs sklearn: zero_division=0, absent classes out of the macro mean", got, want)
    report("  ...the case has what it claims", want["precision"][4] == 0 and want["support"][3] == 0 and
           want["support"][5] == 0 and want["confusion"].reshape(c, c)[:, 5].sum() == 0)

    # Ties: argmax to the lower index (numpy's), top-k by (value, lower index) as graft.h says.
    n, c, k = 400, 5, 2
    logits = RNG.integers(0, 3, size=(n, c)).astype(np.float32)
    labels = RNG.integers(0, c, size=n)
    got, _ = run(["classify", c, k, 37], [logits, labels])
    pred = np.argmax(logits, axis=1)
    x_t = logits[np.arange(n), labels][:, None]
    rank = ((logits > x_t) | ((logits == x_t) & (np.arange(c)[None, :] < labels[:, None]))).sum(axis=1)
    ok1, d1 = close(got["accuracy"], [np.mean(pred == labels)])
    ok2, d2 = close(got["top_k"], [np.mean(rank < k)])
    ok3, d3 = close(got["confusion"], skm.confusion_matrix(labels, pred, labels=range(c)).ravel())
    report("classification with tied logits: argmax and top-k ranking", ok1 and ok2 and ok3, f"{d1}; {d2}; {d3}")

    # Accumulation: one sample per batch gives the very numbers of one batch.
    logits = RNG.normal(size=(97, 6)).astype(np.float32)
    labels = RNG.integers(0, 6, size=97)
    a, _ = run(["classify", 6, 3, 1], [logits, labels])
    b, _ = run(["classify", 6, 3, 97], [logits, labels])
    report("classification: batches of 1 and of 97 agree exactly", all(a[n] == b[n] for n in a if n != "det"))

    # Bad batches are refused, name the sample, and add nothing.
    logits = RNG.normal(size=(30, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, size=30)
    bad_labels = labels.copy()
    bad_labels[13] = 9          # in the second batch of 10
    bad_logits = logits.copy()
    bad_logits[25, 2] = np.nan  # in the third
    got, errors = run(["classify", 4, 2, 10], [np.concatenate([logits, logits[:10]]),
                                               np.concatenate([bad_labels, labels[:10]])])
    want = sklearn_classification(np.concatenate([logits[:10], logits[20:30], logits[:10]]),
                                  np.concatenate([labels[:10], labels[20:30], labels[:10]]), 2)
    ok, detail = close(got["confusion"], want["confusion"])
    report("classification: a label out of range is refused, naming it, and adds nothing",
           ok and errors == ["classification metrics: sample 3 has label 9; expected [0, 4)"],
           f"{errors}; {detail}")
    got, errors = run(["classify", 4, 2, 10], [bad_logits, labels])
    report("classification: a NaN logit is refused, naming it",
           got["samples"] == [20] and errors == ["classification metrics: sample 5 has a non-finite logit (nan) "
                                                 "for class 2"], f"{errors}")
    got, errors = run(["classify", 4, 2, 10], [logits[:, :3], labels])
    report("classification: logits of the wrong width are refused, naming the shape",
           got["samples"] == [0] and errors[:1] == ["classification metrics: logits are float32 [10,3]; expected "
                                                    "float32 [N, 4]"], f"{errors[:1]}")
    code, err = run_error(["classify", 4, 5, 10], [logits, labels])
    report("classification: top-5 of 4 classes is refused", code == 2 and "top-5 of 4 classes" in err, err)


# ---- segmentation ----

def numpy_segmentation(pred, mask, c, ignore):
    valid = mask != ignore
    t, p = mask[valid], pred[valid]
    conf = np.bincount(t * c + p, minlength=c * c).reshape(c, c)
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return {"pixels": [valid.sum()], "pixel_accuracy": [np.mean(t == p)], "iou": iou,
            "mean_iou": [np.nanmean(iou)], "n_present": [np.sum(union > 0)], "confusion": conf.ravel()}


def compare_seg(title, got, want):
    for name, values in want.items():
        ok, detail = close(got[name], values)
        if not ok:
            report(title, False, f"{name}: {detail}")
            return
    report(title, True, f"pixel accuracy {got['pixel_accuracy'][0]:.4f}, mIoU {got['mean_iou'][0]:.4f} "
                        f"over {int(got['n_present'][0])} classes")


def check_segmentation():
    n, c, h, w = 5, 6, 17, 23
    logits = RNG.normal(size=(n, c, h, w)).astype(np.float32)
    mask = RNG.integers(0, c - 1, size=(n, h, w))  # class 5 never true
    logits[:, 5] -= 3                              # and rarely predicted
    logits += 1.5 * np.eye(c, dtype=np.float32)[mask].transpose(0, 3, 1, 2)
    mask[RNG.random(size=mask.shape) < 0.1] = 255
    got, _ = run(["segment", c, 255, 2], [logits, mask])
    compare_seg("segmentation from logits vs numpy, ignore 255, batches of 2", got,
                numpy_segmentation(np.argmax(logits, axis=1), mask, c, 255))

    # A class map with ignore index -1 and class 3 absent from both: NaN, out of the mean.
    pred = RNG.choice([0, 1, 2, 4], size=(4, 9, 11))
    mask = RNG.choice([0, 1, 2, 4, -1], size=(4, 9, 11))
    got, _ = run(["segment", 5, -1, 3], [pred, mask])
    want = numpy_segmentation(pred, mask, 5, -1)
    compare_seg("segmentation from a class map vs numpy, ignore -1, an absent class", got, want)
    report("  ...the absent class's IoU is NaN", math.isnan(got["iou"][3]) and got["n_present"] == [4])

    # By hand: truth [[0 0 1] [1 2 255]], prediction [[0 1 1] [1 0 2]] (the last pixel ignored).
    # Class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 0, FN 1 -> 0;
    # class 3 absent -> NaN. mIoU = (1/3 + 2/3 + 0) / 3 = 1/3; pixel accuracy 3/5.
    truth = np.array([[[0, 0, 1], [1, 2, 255]]])
    pred = np.array([[[0, 1, 1], [1, 0, 2]]])
    got, _ = run(["segment", 4, 255, 1], [pred, truth])
    ok1, d1 = close(got["iou"], [1 / 3, 2 / 3, 0, np.nan])
    ok2, d2 = close(got["mean_iou"] + got["pixel_accuracy"], [1 / 3, 0.6])
    report("segmentation by hand: IoU 1/3, 2/3, 0, NaN; mIoU 1/3; pixel accuracy 0.6", ok1 and ok2, f"{d1}; {d2}")

    # Bad masks and predictions are refused, naming the pixel, adding nothing.
    mask = RNG.integers(0, 3, size=(2, 4, 5))
    bad = mask.copy()
    bad[1, 2, 3] = 7
    got, errors = run(["segment", 3, 255, 1], [mask, bad])
    report("segmentation: a mask value out of range is refused, naming the pixel",
           got["pixels"] == [20] and errors == ["segmentation metrics: mask image 0, row 2, column 3 holds 7; expected "
                                                "a class in [0, 3) or the ignore index 255"], f"{errors}")
    logits = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    logits[1, 2, 1, 4] = np.inf
    got, errors = run(["segment", 3, 255, 1], [logits, mask])
    report("segmentation: non-finite logits are refused, naming the pixel",
           errors == ["segmentation metrics: the logits image 0, row 1, column 4 are not finite (inf for class 2)"],
           f"{errors}")
    got, errors = run(["segment", 3, 255, 2], [logits[:, :, :3], mask])
    want = "the prediction is float32 [2,3,3,5]; for the mask [2,4,5] expected float32 logits [2, 3, 4, 5]"
    report("segmentation: a prediction of another size is refused", len(errors) == 1 and want in errors[0],
           f"{errors}")
    code, err = run_error(["segment", 3, 2, 1], [mask, mask])
    report("segmentation: an ignore index that is a class is refused", code == 2 and "ignore index 2 is one of" in err,
           err)


# ---- boxes: IoU and NMS ----

def corners(b):
    b = torch.from_numpy(np.asarray(b, dtype=np.float32).astype(np.float64))
    return torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def check_box_iou():
    a = np.concatenate([RNG.uniform(0.2, 0.8, size=(40, 2)), RNG.uniform(0.01, 0.5, size=(40, 2))], 1)
    b = np.concatenate([RNG.uniform(0.2, 0.8, size=(30, 2)), RNG.uniform(0.01, 0.5, size=(30, 2))], 1)
    special = [[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2], [0.7, 0.5, 0.2, 0.2], [0.5, 0.5, 0.1, 0.1],
               [0.9, 0.9, 0.05, 0.05], [0.5, 0.5, 0.0, 0.3]]  # same, touching, inside, apart, flat
    a, b = np.concatenate([special, a]).astype(np.float32), np.concatenate([special, b]).astype(np.float32)
    out = subprocess.run([PROG, "iou"], input=tensor_text(a) + tensor_text(b), capture_output=True, text=True)
    got = np.array([[float(v) for v in line.split()[1:]] for line in out.stdout.splitlines()])
    want = torchvision.ops.box_iou(corners(a), corners(b)).numpy()
    want[np.isnan(want)] = 0  # two empty boxes: 0/0 in torchvision, 0 in graft
    ok, detail = close(got, want, tol=0)
    report(f"box IoU vs torchvision.ops.box_iou ({a.shape[0]}x{b.shape[0]} pairs, same, touching, inside, apart, flat)",
           ok, detail + (" (bit-identical)" if ok else ""))


def reference_nms(d, iou):
    """torchvision.ops.nms on each (image, class) group; rows by image, then descending score."""
    keep = []
    for img, cls in sorted({(r[0], r[1]) for r in d}):
        idx = np.where((d[:, 0] == img) & (d[:, 1] == cls))[0]
        kept = torchvision.ops.nms(corners(d[idx, 3:7]), torch.from_numpy(d[idx, 2].astype(np.float64)), iou)
        keep.extend(idx[kept.numpy()])
    keep = np.array(keep, dtype=np.int64)
    order = np.lexsort((-d[keep, 2], d[keep, 0]))
    return d[keep[order]]


def random_detections(n, images, classes, spread=0.15):
    centres = RNG.uniform(0.2, 0.8, size=(8, 2))
    at = centres[RNG.integers(0, 8, size=n)] + RNG.normal(scale=spread / 3, size=(n, 2))
    size = RNG.uniform(0.1, 0.3, size=(n, 2))
    scores = RNG.permutation(np.linspace(0.01, 0.99, n))  # distinct: torchvision's sort is not stable
    return np.column_stack([RNG.integers(0, images, size=n), RNG.integers(0, classes, size=n), scores, at,
                            size]).astype(np.float32)


def check_nms():
    for n, images, classes, iou in [(300, 3, 4, 0.5), (200, 1, 1, 0.3), (400, 5, 2, 0.7), (50, 2, 3, 0.0)]:
        d = random_detections(n, images, classes)
        got, _ = run(["nms", iou], [d])
        want = reference_nms(d, iou)
        ok = got["det"].shape == want.shape and np.array_equal(got["det"].astype(np.float32), want)
        report(f"NMS vs torchvision.ops.nms per (image, class): {n} boxes, {images} images, {classes} classes, "
               f"IoU {iou}", ok, f"kept {want.shape[0]} of {n}" if ok else
               f"graft kept {got['det'].shape[0]}, torchvision {want.shape[0]}")
    d = np.array([[0, 0, np.nan, 0.5, 0.5, 0.1, 0.1]], dtype=np.float32)
    code, err = run_error(["nms", 0.5], [d])
    report("NMS: a NaN score is refused", code == 2 and "detection 0 has a non-finite score" in err, err)


# ---- YOLOv3 decoding ----

def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def reference_yolo(heads, anchors, strides, size, conf_thr, iou_thr, max_det, n_anchors):
    """graft.h's decoding in torch (float64), then torchvision's NMS per (image, class)."""
    rows = []
    for l, p in enumerate(heads):
        p = torch.from_numpy(p.astype(np.float64))
        n, ch, h, w = p.shape
        no = ch // n_anchors
        k = no - 5
        p = p.view(n, n_anchors, no, h, w)
        gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
        for b in range(n):
            for a in range(n_anchors):
                t = p[b, a]
                aw, ah = anchors[2 * (l * n_anchors + a)], anchors[2 * (l * n_anchors + a) + 1]
                cx = (gx + 2 * sigmoid(t[0]) - 0.5) * strides[l] / size[0]
                cy = (gy + 2 * sigmoid(t[1]) - 0.5) * strides[l] / size[1]
                bw = (2 * sigmoid(t[2])) ** 2 * aw / size[0]
                bh = (2 * sigmoid(t[3])) ** 2 * ah / size[1]
                obj = sigmoid(t[4])
                if k > 1:
                    cls = torch.argmax(t[5:], dim=0)
                    conf = obj * sigmoid(torch.gather(t[5:], 0, cls[None])[0])
                else:
                    cls, conf = torch.zeros_like(obj, dtype=torch.int64), obj
                keep = (obj > conf_thr) & (conf > conf_thr)
                for y, x in zip(*torch.nonzero(keep, as_tuple=True)):
                    rows.append([b, int(cls[y, x]), float(conf[y, x]), float(cx[y, x]), float(cy[y, x]),
                                 float(bw[y, x]), float(bh[y, x])])
    d = np.array(rows, dtype=np.float32).reshape(-1, 7)
    d = reference_nms(d, iou_thr) if len(d) else d
    if max_det:
        d = np.concatenate([d[d[:, 0] == b][:max_det] for b in range(heads[0].shape[0])])
    return d


def yolo_case(title, size, strides, n_anchors, classes, batch, conf, iou, max_det, pass_strides=True):
    n_heads = len(strides)
    anchors = RNG.uniform(4, 60, size=2 * n_heads * n_anchors).astype(np.float32)
    heads = []
    for s in strides:
        p = RNG.normal(scale=1.5, size=(batch, n_anchors * (5 + classes), size[1] // s, size[0] // s))
        p.reshape(batch, n_anchors, 5 + classes, -1)[:, :, 4] += 1.0
        heads.append(p.astype(np.float32))
    args = ["yolo", size[0], size[1], conf, iou, max_det, n_anchors] + (list(strides) if pass_strides else [])
    got, _ = run(args, [anchors] + heads)
    want = reference_yolo(heads, anchors, strides, size, conf, iou, max_det, n_anchors)
    g = got["det"]
    ok = g.shape == want.shape and np.array_equal(g[:, :2], want[:, :2]) and np.allclose(g[:, 2:], want[:, 2:],
                                                                                         rtol=1e-6, atol=1e-7)
    detail = (f"{want.shape[0]} boxes kept, max err {np.max(np.abs(g[:, 2:] - want[:, 2:]), initial=0):.1e}" if ok
              else f"graft {g.shape[0]} boxes, reference {want.shape[0]}")
    report(f"YOLOv3 decoding vs torch: {title}", ok and got["images"] == [batch], detail)


def check_yolo():
    yolo_case("3 heads (default strides), 3 anchors, 4 classes, 96x64, conf 0.3, IoU 0.45", (96, 64), (32, 16, 8),
              3, 4, 2, 0.3, 0.45, 0, pass_strides=False)
    yolo_case("max 5 per image", (64, 64), (32, 16, 8), 3, 6, 3, 0.2, 0.5, 5)
    yolo_case("one class (confidence = objectness)", (64, 32), (32, 16, 8), 2, 1, 2, 0.5, 0.45, 0)
    yolo_case("2 heads, strides 16 and 4", (64, 48), (16, 4), 2, 3, 1, 0.4, 0.6, 0)

    # By hand: one 1x1 head, stride 32, input 32x32, anchor (16, 8): all-zero box logits give
    # sigmoid 0.5, so cx = cy = (0 + 1 - 0.5) * 32 / 32 = 0.5, w = 1 * 16 / 32, h = 8 / 32;
    # objectness logit 0 and class logits (0, 2): confidence 0.5 * sigmoid(2), class 1.
    head = np.zeros((1, 7, 1, 1), dtype=np.float32)
    head[0, 6] = 2
    got, _ = run(["yolo", 32, 32, 0.1, 0.5, 0, 1, 32], [np.array([16, 8], dtype=np.float32), head])
    want = np.array([[0, 1, 0.5 / (1 + math.exp(-2)), 0.5, 0.5, 0.5, 0.25]], dtype=np.float32)
    report("YOLOv3 decoding by hand: one cell", got["det"].shape == (1, 7) and np.allclose(got["det"], want, atol=1e-7),
           f"{got['det'].tolist()}")

    anchors = np.full(12, 10, dtype=np.float32)
    heads = [np.zeros((1, 3 * 7, 2, 2), dtype=np.float32), np.zeros((1, 3 * 7, 2, 2), dtype=np.float32)]
    code, err = run_error(["yolo", 64, 64, 0.1, 0.5, 0, 3, 32, 16], [anchors] + heads)
    report("YOLOv3 decoding: a grid that does not fit the input is refused",
           code == 2 and "head 1's grid 2x2 times its stride 16 is not the input size 64x64" in err, err)
    heads[0][0, 9, 1, 0] = np.nan
    code, err = run_error(["yolo", 64, 64, 0.1, 0.5, 0, 3, 32], [anchors[:6], heads[0]])
    report("YOLOv3 decoding: a NaN in a head is refused, naming where",
           code == 2 and "head 0 has nan at image 0, channel 9, row 1, column 0" in err, err)


# ---- mAP ----

def numpy_voc_map(batches, k, thr):
    """VOC 2010+ AP per class, written from the devkit's description: greedy matching in
    descending score order to the best-IoU ground truth of the image, all-point AP."""
    dets, truth, offset = [], [], 0
    for images, d, t in batches:
        dets += [(r[0] + offset, int(r[1]), r[2], r[3:7]) for r in d]
        truth += [(r[0] + offset, int(r[1]), r[2:6]) for r in t]
        offset += images
    ap = np.full(k, np.nan)
    for c in range(k):
        gt = [(img, box) for img, cls, box in truth if cls == c]
        if not gt:
            continue
        taken = np.zeros(len(gt), bool)
        mine = [(i, d) for i, d in enumerate(dets) if d[1] == c]
        mine.sort(key=lambda e: (-e[1][2], e[0]))
        tp = np.zeros(len(mine))
        for n, (_, (img, _, _, box)) in enumerate(mine):
            cand = [j for j, g in enumerate(gt) if g[0] == img]
            if not cand:
                continue
            ious = torchvision.ops.box_iou(corners([box]), corners([gt[j][1] for j in cand]))[0].numpy()
            j = cand[int(np.argmax(ious))]
            if ious.max() >= thr and not taken[j]:
                taken[j], tp[n] = True, 1
        ctp = np.cumsum(tp)
        rec = ctp / len(gt)
        prec = ctp / np.arange(1, len(mine) + 1)
        mrec = np.concatenate([[0], rec, [1]])
        mpre = np.concatenate([[0], prec, [0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        ap[c] = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return ap


def map_input(batches):
    tensors = [np.array([len(batches)])]
    for images, d, t in batches:
        tensors += [np.array([images]), np.asarray(d, dtype=np.float32).reshape(-1, 7),
                    np.asarray(t, dtype=np.float32).reshape(-1, 6)]
    return tensors


def check_map_by_hand():
    # Class 0: truth A, B in image 0 and C in image 1 (the second batch's image 0).
    #   0.9 on A (TP), 0.8 on A again (FP: taken), 0.7 on C (TP), 0.6 on nothing (FP); B missed.
    #   precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3: AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    # Class 1: one box, one detection at IoU 0.4 (FP): AP 0.
    # Class 2: a detection, no truth: AP NaN, out of the mean. Class 3: nothing at all: NaN.
    # Class 4: truth P, Q side by side in image 0; 0.9 on P (TP); 0.8 has IoU 2/3 with P and
    #   7/13 with Q: VOC matches it to P, taken, so FP although Q is free: AP = 1/2 * 1 = 1/2.
    # mAP = (5/9 + 0 + 1/2) / 3 = 19/54.
    a, b, c = [0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2], [0.5, 0.5, 0.4, 0.4]
    p, q = [0.40, 0.5, 0.2, 0.4], [0.50, 0.5, 0.2, 0.4]
    between = [0.44, 0.5, 0.2, 0.4]
    far = [0.1, 0.9, 0.1, 0.1]
    one = [0.5, 0.5, 0.2, 0.2]
    shifted = [0.5 + 0.12 / 1.4, 0.5, 0.2, 0.2]  # IoU with `one`: (0.2 - dx) / (0.2 + dx) = 0.4
    iou_pq = torchvision.ops.box_iou(corners([between]), corners([p, q]))[0].numpy()
    iou_one = torchvision.ops.box_iou(corners([shifted]), corners([one]))[0].numpy()
    report("  mAP case: its IoUs are as the comment says",
           abs(iou_pq[0] - 2 / 3) < 1e-6 and abs(iou_pq[1] - 7 / 13) < 1e-6 and abs(iou_one[0] - 0.4) < 1e-6,
           f"{iou_pq}, {iou_one}")
    batch0 = (1, [[0, 0, 0.9] + a, [0, 0, 0.8] + a, [0, 1, 0.5] + shifted, [0, 2, 0.5] + far,
                  [0, 4, 0.9] + p, [0, 4, 0.8] + between],
              [[0, 0] + a, [0, 0] + b, [0, 1] + one, [0, 4] + p, [0, 4] + q])
    batch1 = (2, [[0, 0, 0.7] + c, [1, 0, 0.6] + far], [[0, 0] + c])
    got, _ = run(["map", 5, 0.5], map_input([batch0, batch1]))
    ok1, d1 = close(got["ap"], [5 / 9, 0, np.nan, np.nan, 0.5])
    ok2, d2 = close(got["map"], [19 / 54])
    ok3 = got["n_truth"] == [3, 1, 0, 0, 2] and got["n_detections"] == [4, 1, 1, 0, 2] and got["images"] == [3]
    report("mAP@0.5 by hand: AP 5/9, 0, NaN, NaN, 1/2; mAP 19/54", ok1 and ok2 and ok3, f"{d1}; {d2}")
    ok4, d4 = close(got["ap"], numpy_voc_map([batch0, batch1], 5, 0.5))
    report("  ...and the numpy VOC implementation agrees on it", ok4, d4)


def check_map_random():
    for images, k, per_batch in [(40, 5, 8), (25, 3, 1), (60, 8, 16)]:
        batches = []
        for start in range(0, images, per_batch):
            n = min(per_batch, images - start)
            truth, dets = [], []
            for img in range(n):
                for _ in range(RNG.integers(0, 5)):
                    box = [*RNG.uniform(0.2, 0.8, 2), *RNG.uniform(0.05, 0.3, 2)]
                    cls = int(RNG.integers(0, k))
                    truth.append([img, cls] + box)
                    for _ in range(RNG.integers(0, 3)):  # hits, near misses and duplicates
                        jitter = [box[0] + RNG.normal(0, 0.03), box[1] + RNG.normal(0, 0.03),
                                  box[2] * RNG.uniform(0.7, 1.3), box[3] * RNG.uniform(0.7, 1.3)]
                        dets.append([img, cls if RNG.random() < 0.85 else int(RNG.integers(0, k)),
                                     RNG.random()] + jitter)
                for _ in range(RNG.integers(0, 4)):  # background
                    dets.append([img, int(RNG.integers(0, k)), RNG.random() * 0.5,
                                 *RNG.uniform(0.1, 0.9, 2), *RNG.uniform(0.05, 0.3, 2)])
            batches.append((n, np.array(dets, dtype=np.float32).reshape(-1, 7),
                            np.array(truth, dtype=np.float32).reshape(-1, 6)))
        got, _ = run(["map", k, 0.5], map_input(batches))
        want = numpy_voc_map([(n, d.astype(np.float64), t.astype(np.float64)) for n, d, t in batches], k, 0.5)
        ok, detail = close(got["ap"], want)
        ok2, d2 = close(got["map"], [np.nanmean(want)])
        report(f"mAP@0.5 vs numpy VOC: {images} images, {k} classes, batches of {per_batch}", ok and ok2,
               f"mAP {got['map'][0]:.4f}; {detail}; {d2}")
    # At IoU 0.75 fewer detections count.
    got50, _ = run(["map", k, 0.5], map_input(batches))
    got75, _ = run(["map", k, 0.75], map_input(batches))
    ok, detail = close(got75["ap"], numpy_voc_map(batches, k, 0.75))
    report("mAP@0.75 vs numpy VOC, and below mAP@0.5", ok and got75["map"][0] < got50["map"][0], detail)


def check_map_errors():
    good = (2, [[0, 0, 0.9, 0.5, 0.5, 0.2, 0.2]], [[0, 0, 0.5, 0.5, 0.2, 0.2]])
    bad_class = (2, [], [[1, 3, 0.5, 0.5, 0.2, 0.2]])
    bad_image = (2, [[2, 0, 0.9, 0.5, 0.5, 0.2, 0.2]], [])
    got, errors = run(["map", 2, 0.5], map_input([good, bad_class, bad_image, good]))
    want = ["detection metrics: target 0 has class 3; expected an integer in [0, 2)",
            "detection metrics: detection 0 (image 2, class 0, score 0.9, box 0.5, 0.5, 0.2, 0.2) is not an image of "
            "the 2, a class of the 2 with a score and a box"]
    report("mAP: bad targets and detections are refused, naming them, and add nothing",
           errors == want and got["images"] == [4] and got["n_truth"] == [2, 0] and got["ap"][0] == 1,
           f"{errors}")


def main():
    check_classification()
    check_segmentation()
    check_box_iou()
    check_nms()
    check_yolo()
    check_map_by_hand()
    check_map_random()
    check_map_errors()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
