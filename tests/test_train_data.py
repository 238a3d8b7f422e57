#!/usr/bin/python3
"""`graft train --data` and `graft eval` end to end, on small data sets made here.

    test_train_data.py GRAFT_EXE SOURCE_ROOT

Classification: a folder of class folders of PNG images whose class sets which
channel is bright in which quadrant. graft trains tiny_cnn_bn on it with a
validation split: it learns, the log and the plots are written, the kept model is
the best epoch's, and PyTorch (the same network, loaded with the exported weights
by name) scores the kept model as graft eval does. Resuming from an epoch's
checkpoint gives the same weights as not stopping; early stopping stops.
Segmentation: images with class masks; a small FCN learns them, and graft eval's
mean IoU and pixel accuracy are those of PyTorch's predictions with the exported
weights. Detection: images with boxes in YOLO's format; a small two-head YOLOv3
learns them with YOLOv3's loss, and graft eval's mAP@0.5 is the one computed here
from PyTorch's outputs (decoding, torchvision's NMS, VOC's all-point AP).
Bad data sets are refused with messages that name the file.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from PIL import Image
from torch import nn

GRAFT, ROOT = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(ROOT, "models/onnx"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import export  # noqa: E402  (the project's exporter: TinyCNN)
from test_train_torch import TinyFCN  # noqa: E402

TINY = os.path.join(ROOT, "models/onnx/tiny_cnn/tiny_cnn_bn/model.onnx")
failures, passes = [], 0


def check(what, ok, detail=""):
    global passes
    print(f"{'ok  ' if ok else 'FAIL'} {what}{'  ' + detail if detail and not ok else ''}", flush=True)
    if ok:
        passes += 1
    else:
        failures.append(what)


def graft(*args):
    return subprocess.run([GRAFT, *args], capture_output=True, text=True)


def weights(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def quadrant_images(root, n_per_class, classes=3, size=16, seed=0):
    """classes/CLASS/NNN.png: class c is bright in channel c % 3, quadrant c % 4."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class{c}"), exist_ok=True)
        for i in range(n_per_class):
            img = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
            q, h = c % 4, size // 2
            img[(q // 2) * h:(q // 2) * h + h, (q % 2) * h:(q % 2) * h + h, c % 3] += 150
            Image.fromarray(img).save(os.path.join(root, f"class{c}", f"{i:03d}.png"))


def read_log(path):
    lines = open(path).read().split()
    head = lines[0].split(",")
    return [dict(zip(head, map(float, line.split(",")))) for line in lines[1:]]


def torch_tiny_cnn(path, n_classes):
    model = export.TinyCNN(n_classes)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights(path).items()}, strict=True)
    return model.eval()


def folder_tensors(root):
    """The images as graft's loader gives them without a transform: pixel / 255, CHW, in ImageFolder's order."""
    xs, ys = [], []
    for c, name in enumerate(sorted(os.listdir(root))):
        for f in sorted(os.listdir(os.path.join(root, name))):
            xs.append(np.asarray(Image.open(os.path.join(root, name, f)).convert("RGB"), np.float32).transpose(2, 0, 1) / 255)
            ys.append(c)
    return np.stack(xs), np.array(ys)


def classification(tmp):
    data, val = os.path.join(tmp, "train"), os.path.join(tmp, "val")
    quadrant_images(data, 40, seed=1)
    quadrant_images(val, 15, seed=2)
    out, log, plots, ck = (os.path.join(tmp, f) for f in ("best.onnx", "epochs.csv", "plots", "ck.onnx"))
    common = ["--data", data, "--val", val, "--batch", "16", "--optim", "adam", "--lr", "0.01", "--seed", "4",
              "--workers", "2"]
    r = graft("train", TINY, *common, "--epochs", "6", "--out", out, "--log", log, "--plots", plots, "--json")
    check("train --data runs", r.returncode == 0, r.stderr[-2000:])
    if r.returncode:
        return
    summary = json.loads(r.stdout)
    rows = read_log(log)
    check("the log has a row an epoch with the losses, scores, rate and time",
          len(rows) == 6 and {"train_loss", "train_top1", "val_loss", "val_top1", "lr", "seconds", "data_wait_s"}
          <= set(rows[0]))
    check("the time waiting for data is a part of the epoch's",
          all(0 <= r["data_wait_s"] <= r["seconds"] for r in rows) and 0 <= summary["data_wait"] <= 1,
          f"{[(r['data_wait_s'], r['seconds']) for r in rows]}, share {summary['data_wait']}")
    check("it learns: validation top-1 above 0.9", max(r["val_top1"] for r in rows) > 0.9, str([r["val_top1"] for r in rows]))
    check("the training loss falls", rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"])
    best = max(range(6), key=lambda e: (rows[e]["val_top1"], -e))
    check("the summary names the best epoch", summary["best_epoch"] == best + 1 and
          abs(summary["best_top1"] - rows[best]["val_top1"]) < 1e-9, r.stdout)
    for name in ("loss.png", "score.png", "lr.png"):
        path = os.path.join(plots, name)
        check(f"plot {name} is a PNG", os.path.exists(path) and Image.open(path).size[0] >= 240)

    # The kept model, scored by graft eval and by PyTorch with the same weights.
    r = graft("eval", out, "--data", val, "--json", "--report", os.path.join(tmp, "report"))
    check("eval runs", r.returncode == 0, r.stderr)
    if r.returncode == 0:
        ev = json.loads(r.stdout)
        x, y = folder_tensors(val)
        with torch.no_grad():
            logits = torch_tiny_cnn(out, 3)(torch.from_numpy(x)).numpy()
        top1 = float(np.mean(logits.argmax(1) == y))
        check("eval's top-1 is PyTorch's on the kept model", abs(ev["top1"] - top1) < 1e-9, f"{ev['top1']} vs {top1}")
        check("the kept model is the best epoch's (eval's top-1 is the log's best)",
              abs(ev["top1"] - rows[best]["val_top1"]) < 1e-9, f"{ev['top1']} vs {rows[best]['val_top1']}")
        check("eval's top-5 with 3 classes is 1", ev["top5"] == 1.0)
        conf = np.array(ev["confusion"])
        check("eval's confusion matrix is PyTorch's",
              np.array_equal(conf, np.array([[np.sum((y == i) & (logits.argmax(1) == j)) for j in range(3)]
                                             for i in range(3)])))
        check("eval writes confusion.png", os.path.exists(os.path.join(tmp, "report", "confusion.png")))

    # Resuming from the checkpoint of epoch 2 gives epoch 4's weights as 4 straight epochs do.
    straight, resumed = os.path.join(tmp, "straight.onnx"), os.path.join(tmp, "resumed.onnx")
    r1 = graft("train", TINY, *common, "--epochs", "4", "--out", straight, "--quiet", "--sched", "cosine:4")
    r2 = graft("train", TINY, *common, "--epochs", "2", "--checkpoint", ck, "--quiet", "--sched", "cosine:4")
    r3 = graft("train", TINY, *common, "--epochs", "4", "--resume", ck, "--checkpoint", ck, "--out", resumed,
               "--quiet", "--sched", "cosine:4")
    ok = r1.returncode == r2.returncode == r3.returncode == 0
    check("train 2 epochs, checkpoint, resume to 4", ok, r1.stderr + r2.stderr + r3.stderr)
    if ok:
        # --out keeps the best epoch: compare the checkpoint's weights, which are the last epoch's.
        last = os.path.join(tmp, "last.onnx")
        graft("train", TINY, *common, "--epochs", "4", "--checkpoint", last, "--quiet", "--sched", "cosine:4")
        a, b = weights(last), weights(ck)
        check("resumed by epochs: bit-identical weights", all(np.array_equal(a[k], b[k]) for k in a))

    # eval --limit N --seed S scores the samples train --val-limit N --seed S validated on: an
    # untrained model (lr 0), whose top-1 is that of one class and so differs between subsets.
    sub = os.path.join(tmp, "subset.onnx")
    r = graft("train", TINY, *common, "--epochs", "1", "--lr", "0", "--val-limit", "20", "--out", sub, "--json")
    scored = {}
    for seed in range(6):
        r2 = graft("eval", sub, "--data", val, "--limit", "20", "--seed", str(seed), "--json", "--no-report")
        scored[seed] = json.loads(r2.stdout)["top1"] if r2.returncode == 0 else None
    if r.returncode == 0 and None not in scored.values():
        trained = json.loads(r.stdout)["best_top1"]
        check("eval --limit 20 --seed 4 scores train --val-limit 20 --seed 4's subset",
              abs(trained - scored[4]) < 1e-9, f"{scored[4]} vs {trained}")
        check("eval --limit draws another subset for another seed", len(set(scored.values())) > 1, str(scored))
    else:
        check("train --val-limit and eval --limit --seed run", False, r.stderr + r2.stderr)

    r = graft("train", TINY, *common, "--epochs", "6", "--lr", "0", "--early-stop", "2", "--json")
    summary = json.loads(r.stdout) if r.returncode == 0 else {}
    check("--early-stop stops once the score has not improved for that many epochs",
          summary.get("stopped_early") is True and summary.get("epochs") == 3, r.stdout + r.stderr)


def segmentation(tmp):
    """Images with a bright disc: class 1 inside it, 2 on a stripe, 0 elsewhere."""
    root = os.path.join(tmp, "seg")
    rng = np.random.default_rng(5)
    for d in ("images", "masks"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    yy, xx = np.mgrid[:32, :32]
    for i in range(48):
        cy, cx, rad = rng.integers(8, 24), rng.integers(8, 24), rng.integers(5, 9)
        mask = np.zeros((32, 32), np.uint8)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad] = 1
        mask[:, (i % 4) * 8:(i % 4) * 8 + 4] = 2
        img = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
        img[mask == 1] += np.array([180, 40, 40], np.uint8)
        img[mask == 2] += np.array([20, 160, 20], np.uint8)
        Image.fromarray(img).save(os.path.join(root, "images", f"{i:02d}.png"))
        Image.fromarray(mask).save(os.path.join(root, "masks", f"{i:02d}.png"))
    torch.manual_seed(0)
    fcn = os.path.join(tmp, "fcn.onnx")
    model = TinyFCN(3).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), fcn, opset_version=13, do_constant_folding=False,
                      input_names=["input"], output_names=["scores"],
                      dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}})
    out = os.path.join(tmp, "fcn_trained.onnx")
    r = graft("train", fcn, "--data", root, "--classes", "3", "--val-split", "0.25", "--epochs", "12", "--batch", "4",
              "--optim", "adam", "--lr", "0.01", "--out", out, "--json", "--seed", "1")
    check("train --data on a segmentation set runs", r.returncode == 0, r.stderr[-2000:])
    if r.returncode:
        return
    summary = json.loads(r.stdout)
    check("segmentation: it learns (best validation mean IoU above 0.5)", summary["best_miou"] > 0.5, r.stdout)
    r = graft("eval", out, "--data", root, "--json", "--report", os.path.join(tmp, "seg_report"), "--overlays", "2")
    check("eval on a segmentation set runs", r.returncode == 0, r.stderr)
    if r.returncode:
        return
    ev = json.loads(r.stdout)
    net = TinyFCN(3)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights(out).items()}, strict=True)
    names = sorted(os.listdir(os.path.join(root, "images")))
    x = np.stack([np.asarray(Image.open(os.path.join(root, "images", n)), np.float32).transpose(2, 0, 1) / 255
                  for n in names])
    y = np.stack([np.asarray(Image.open(os.path.join(root, "masks", n))) for n in names]).astype(np.int64)
    with torch.no_grad():
        pred = net.eval()(torch.from_numpy(x)).numpy().argmax(1)
    ious = [np.sum((pred == c) & (y == c)) / np.sum((pred == c) | (y == c)) for c in range(3)
            if np.sum((pred == c) | (y == c))]
    check("eval's mean IoU is PyTorch's predictions'", abs(ev["miou"] - np.mean(ious)) < 1e-9,
          f"{ev['miou']} vs {np.mean(ious)}")
    check("eval's pixel accuracy is PyTorch's predictions'", abs(ev["pixel_acc"] - np.mean(pred == y)) < 1e-9)
    overlay = os.path.join(tmp, "seg_report", "overlay_000.png")
    check("eval writes mask overlays", os.path.exists(overlay) and Image.open(overlay).size == (32, 32))


def cbl(a, b, stride=1):
    return nn.Sequential(nn.Conv2d(a, b, 3, stride, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.1))


class TinyYolo(nn.Module):
    """Two YOLOv3 heads (strides 32 and 16) of 3 anchors and 2 classes over a small backbone."""

    def __init__(self):
        super().__init__()
        self.to16 = nn.Sequential(cbl(3, 8, 2), cbl(8, 16, 2), cbl(16, 16, 2), cbl(16, 32, 2))
        self.to32 = cbl(32, 32, 2)
        self.head32 = nn.Conv2d(32, 3 * 7, 1)
        self.head16 = nn.Conv2d(32, 3 * 7, 1)

    def forward(self, x):
        f16 = self.to16(x)
        return self.head32(self.to32(f16)), self.head16(f16)


ANCHORS = [32, 32, 24, 40, 40, 24, 12, 12, 16, 16, 20, 20]


def boxes_set(root, n, seed):
    rng = np.random.default_rng(seed)
    for d in ("images", "labels"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for i in range(n):
        img, lines = rng.integers(0, 50, (64, 64, 3)).astype(np.uint8), []
        for _ in range(rng.integers(1, 3)):
            c, w, h = int(rng.integers(0, 2)), int(rng.integers(14, 30)), int(rng.integers(14, 30))
            x0, y0 = int(rng.integers(0, 64 - w)), int(rng.integers(0, 64 - h))
            img[y0:y0 + h, x0:x0 + w] = [(220, 40, 40), (40, 200, 40)][c]
            lines.append(f"{c} {(x0 + w / 2) / 64:.6f} {(y0 + h / 2) / 64:.6f} {w / 64:.6f} {h / 64:.6f}")
        Image.fromarray(img).save(os.path.join(root, "images", f"{i:03d}.png"))
        with open(os.path.join(root, "labels", f"{i:03d}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


def reference_map50(net, root):
    """mAP@0.5 from PyTorch's heads: YOLOv3 decoding as the README states it, confidence
    above 0.001, torchvision's NMS per class at 0.45, the best 300 per image, VOC all-point AP."""
    import torchvision
    names = sorted(os.listdir(os.path.join(root, "images")))
    x = np.stack([np.asarray(Image.open(os.path.join(root, "images", n)), np.float32).transpose(2, 0, 1) / 255
                  for n in names])
    with torch.no_grad():
        heads = net.eval()(torch.from_numpy(x))
    dets = []  # (image, class, score, x0, y0, x1, y1)
    for img in range(len(names)):
        rows = []
        for l, (p, stride) in enumerate(zip(heads, (32, 16))):
            p = p[img].reshape(3, 7, p.shape[2], p.shape[3])
            gy, gx = torch.meshgrid(torch.arange(p.shape[2]), torch.arange(p.shape[3]), indexing="ij")
            for a in range(3):
                s = torch.sigmoid(p[a])
                cx = (gx + 2 * s[0] - 0.5) * stride / 64
                cy = (gy + 2 * s[1] - 0.5) * stride / 64
                w = (2 * s[2]) ** 2 * ANCHORS[(l * 3 + a) * 2] / 64
                h = (2 * s[3]) ** 2 * ANCHORS[(l * 3 + a) * 2 + 1] / 64
                cls_score, cls = s[5:].max(0)
                conf = s[4] * cls_score
                for yy, xx in zip(*torch.nonzero(conf > 0.001, as_tuple=True)):
                    rows.append((int(cls[yy, xx]), float(conf[yy, xx]), float(cx[yy, xx] - w[yy, xx] / 2),
                                 float(cy[yy, xx] - h[yy, xx] / 2), float(cx[yy, xx] + w[yy, xx] / 2),
                                 float(cy[yy, xx] + h[yy, xx] / 2)))
        if not rows:
            continue
        t = torch.tensor([r[2:] for r in rows], dtype=torch.float64)
        keep = torchvision.ops.batched_nms(t, torch.tensor([r[1] for r in rows], dtype=torch.float64),
                                           torch.tensor([r[0] for r in rows]), 0.45)
        dets += [(img, *rows[k]) for k in keep[:300].tolist()]
    truth = {}
    for img, n in enumerate(names):
        for line in open(os.path.join(root, "labels", n[:-4] + ".txt")).read().split("\n"):
            if line:
                c, cx, cy, w, h = map(float, line.split())
                truth.setdefault((img, int(c)), []).append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    aps = []
    for c in range(2):
        gt = {k[0]: np.array(v) for k, v in truth.items() if k[1] == c}
        n_gt = sum(len(v) for v in gt.values())
        if not n_gt:
            continue
        taken = {k: np.zeros(len(v), bool) for k, v in gt.items()}
        mine = sorted([d for d in dets if d[1] == c], key=lambda d: -d[2])
        tp = []
        for img, _, _, *box in mine:
            g = gt.get(img)
            if g is None:
                tp.append(0)
                continue
            iw = np.clip(np.minimum(g[:, 2], box[2]) - np.maximum(g[:, 0], box[0]), 0, None)
            ih = np.clip(np.minimum(g[:, 3], box[3]) - np.maximum(g[:, 1], box[1]), 0, None)
            inter = iw * ih
            iou = inter / ((g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter)
            j = int(np.argmax(iou))
            hit = iou[j] >= 0.5 and not taken[img][j]
            if hit:
                taken[img][j] = True
            tp.append(int(hit))
        tp = np.array(tp, float)
        recall = np.concatenate([[0], np.cumsum(tp) / n_gt, [np.sum(tp) / n_gt if len(tp) else 0]])
        precision = np.concatenate([[0], np.cumsum(tp) / np.arange(1, len(tp) + 1), [0]])
        for k in range(len(precision) - 2, -1, -1):
            precision[k] = max(precision[k], precision[k + 1])
        aps.append(float(np.sum((recall[1:] - recall[:-1]) * precision[1:])))
    return float(np.mean(aps))


def detection(tmp):
    train, val = os.path.join(tmp, "det_train"), os.path.join(tmp, "det_val")
    boxes_set(train, 64, 0)
    boxes_set(val, 20, 1)
    torch.manual_seed(0)
    model, out, log = os.path.join(tmp, "yolo.onnx"), os.path.join(tmp, "yolo_trained.onnx"), os.path.join(tmp, "det.csv")
    torch.onnx.export(TinyYolo().eval(), torch.zeros(1, 3, 64, 64), model, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False, input_names=["input"],
                      output_names=["head_stride32", "head_stride16"],
                      dynamic_axes={"input": {0: "batch"}, "head_stride32": {0: "batch"}, "head_stride16": {0: "batch"}})
    anchors = ",".join(map(str, ANCHORS))
    r = graft("train", model, "--data", train, "--val", val, "--epochs", "12", "--batch", "8", "--optim", "adam",
              "--lr", "3e-3", "--anchors", anchors, "--out", out, "--log", log, "--json")
    check("train --data on a YOLO set runs", r.returncode == 0, r.stderr[-2000:])
    if r.returncode:
        return
    summary, rows = json.loads(r.stdout), read_log(log)
    check("detection: the log scores each epoch by validation mAP@0.5", "val_map50" in rows[0] and len(rows) == 12)
    check("detection: it learns (best mAP@0.5 above 0.3, up from the first epochs')",
          summary["best_map50"] > 0.3 and summary["best_map50"] > 3 * rows[0]["val_map50"], str([r["val_map50"] for r in rows]))
    r = graft("eval", out, "--data", val, "--anchors", anchors, "--json", "--report", os.path.join(tmp, "det_report"),
              "--overlays", "2")
    check("eval on a YOLO set runs", r.returncode == 0, r.stderr)
    if r.returncode:
        return
    ev = json.loads(r.stdout)
    check("eval's mAP@0.5 of the kept model is the log's best", abs(ev["map50"] - summary["best_map50"]) < 1e-6,
          f"{ev['map50']} vs {summary['best_map50']}")
    net = TinyYolo()
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights(out).items()}, strict=True)
    ref = reference_map50(net, val)
    check("eval's mAP@0.5 is the one computed from PyTorch's outputs", abs(ev["map50"] - ref) < 1e-4,
          f"{ev['map50']} vs {ref}")
    check("eval writes box overlays", os.path.exists(os.path.join(tmp, "det_report", "overlay_000.png")))


def refuses(what, args, expect, tmp):
    r = graft(*args)
    ok = r.returncode == 1 and all(e in r.stderr for e in expect)
    check(f"refuses {what}", ok, f"rc {r.returncode}: {r.stderr.strip()}")


def bad_data(tmp):
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    refuses("a data folder with no images", ["train", TINY, "--data", empty, "--epochs", "1"], [empty], tmp)
    hole = os.path.join(tmp, "hole")
    quadrant_images(hole, 4)
    os.makedirs(os.path.join(hole, "class9"))
    refuses("an empty class folder", ["train", TINY, "--data", hole, "--epochs", "1"], ["class9"], tmp)
    three = os.path.join(tmp, "three")
    quadrant_images(three, 4)
    refuses("labels outside --classes", ["train", TINY, "--data", three, "--classes", "2", "--epochs", "1"],
            [three, "3 classes", "2"], tmp)
    # A failed run leaves the previous best model as it was.
    out = os.path.join(tmp, "kept.onnx")
    r = graft("train", TINY, "--data", three, "--epochs", "1", "--batch", "4", "--out", out, "--quiet")
    before = open(out, "rb").read() if r.returncode == 0 else None
    with open(os.path.join(three, "class1", "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    r = graft("train", TINY, "--data", three, "--epochs", "2", "--batch", "1", "--out", out, "--quiet")
    check("a broken image fails the run, naming the file", r.returncode == 1 and "broken.png" in r.stderr, r.stderr)
    check("and the previous model is left as it was", before is not None and open(out, "rb").read() == before)
    r = graft("train", TINY, "--data", three, "--epochs", "1", "--batch", "4", "--skip-bad", "--quiet")
    check("--skip-bad skips it with a warning", r.returncode == 0 and "broken.png" in r.stderr, r.stderr)


def main():
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        classification(tmp)
        segmentation(tmp)
        detection(tmp)
        bad_data(tmp)
    print(f"{passes} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
