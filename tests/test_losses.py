"""Training losses and their gradients (domain ai.graft): CrossEntropyLoss (+ its
log_prob output), CrossEntropyLossGrad, NLLLossGrad, MSELoss(Grad), L1Loss(Grad),
BCEWithLogitsLoss(Grad), YoloV3Loss(Grad), each a one-node model run with `graft run`, against
torch.nn.functional in float64 (gradients by autograd, seeded with a random dloss).

Covered: every reduction; class weights on and off; label_smoothing 0 and 0.1;
ignore_index at its default -100 and inside [0, C), present in the targets; [N, C]
and [N, C, H, W] (segmentation) scores; every target ignored under "mean" (NaN loss,
zero gradient, as torch); L1 at x == y (sign(0) = 0); BCE weight and pos_weight
broadcast ([C], [N, 1], full, [C, 1, 1] on 4-D) and pos_weight without weight;
the ONNX NegativeLogLikelihoodLoss forward that NLLLossGrad differentiates; results
identical on 1 and 3 threads for inputs spanning many reduction blocks; bad labels
and mismatched shapes fail with a message naming what is wrong and a non-zero exit.
YoloV3Loss is checked against the same definition written here in torch (see
loss_train.c): 3 heads and 1, 4 classes and 1 (no class term), several targets in one
cell and the same target twice, no targets at all.

Tolerance: |graft - torch| <= 1e-5 * max|torch| + 1e-7, elementwise, NaN only where
torch has NaN (float32 inputs, double arithmetic in the kernels).

usage: test_losses.py GRAFT_BINARY
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

GRAFT = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="graft-losses-")
RNG = np.random.default_rng(5)
REL, ABS = 1e-5, 1e-7
REDUCTIONS = ("mean", "sum", "none")
results = {"passed": 0, "failed": 0}


def report(title, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}", flush=True)


def write_model(op, inputs, attrs, n_outputs=1, domain="ai.graft"):
    """A one-node model; inputs are arrays, None for an omitted optional input.
    Returns (model dir, graft run args)."""
    graph_inputs, names, feeds = [], [], []
    for i, v in enumerate(inputs):
        if v is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        graph_inputs.append(helper.make_tensor_value_info(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[v.dtype], v.shape))
        feeds.append((name, v))
    outs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op, names, outs, name="node", domain=domain, **attrs)
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.graft", 1)])
    write_model.count = getattr(write_model, "count", 0) + 1
    base = os.path.join(TMP, f"m{write_model.count}")
    os.makedirs(base)
    onnx.save(model, os.path.join(base, "model.onnx"))
    args = [GRAFT, "run", os.path.join(base, "model.onnx")]
    for name, arr in feeds:
        path = os.path.join(base, name + ".pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(arr, name).SerializeToString())
        args += ["--input", path]
    return base, args + ["--output-dir", base]


def run_graft(base, args, n_outputs, threads=None):
    """Returns (list of outputs or None, stderr)."""
    for i in range(n_outputs):
        path = os.path.join(base, f"output_{i}.pb")
        if os.path.exists(path):
            os.remove(path)
    if threads:
        args = args + ["--threads", str(threads)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or "runtime error" in proc.stderr or "Sanitizer" in proc.stderr:
        return None, proc.stderr.strip() or f"exit {proc.returncode}"
    return [numpy_helper.to_array(onnx.load_tensor(os.path.join(base, f"output_{i}.pb"))) for i in range(n_outputs)], ""


def compare(got, ref):
    """Returns (ok, detail) under the tolerance; NaN must match NaN."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if got.shape != ref.shape:
        return False, f"shape {got.shape}, expected {ref.shape}"
    nan = np.isnan(ref)
    if not np.array_equal(nan, np.isnan(got)):
        return False, f"NaN at {np.argwhere(np.isnan(got)).tolist()[:4]}, torch at {np.argwhere(nan).tolist()[:4]}"
    finite = ref[~nan]
    diff = float(np.max(np.abs(got[~nan] - finite))) if finite.size else 0.0
    bound = REL * (float(np.max(np.abs(finite))) if finite.size else 0.0) + ABS
    return diff <= bound, f"max err {diff:.2e} (bound {bound:.2e})" + (" (NaN as torch)" if nan.any() else "")


def check(title, op, inputs, attrs, refs, domain="ai.graft", same_bits=False):
    """Runs the node and compares each output with refs; with same_bits, also that
    1 and 3 threads give identical outputs."""
    base, args = write_model(op, inputs, attrs, len(refs), domain)
    got, err = run_graft(base, args, len(refs))
    if got is None:
        report(title, False, err)
        return
    details, ok = [], True
    for g, r in zip(got, refs):
        o, d = compare(g, r)
        ok, details = ok and o, details + [d]
    report(title, ok, "; ".join(details))
    if same_bits:
        runs = [run_graft(base, args, len(refs), t)[0] for t in (1, 3)]
        same = all(r is not None and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(r, got)) for r in runs)
        report(f"{title} [the same bits on 1 and 3 threads]", same)


def expect_error(title, op, inputs, attrs, needles, n_outputs=1):
    base, args = write_model(op, inputs, attrs, n_outputs)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip()
    ok = proc.returncode != 0 and all(n in err for n in needles) and "Sanitizer" not in err \
        and "runtime error" not in err
    first = err.splitlines()[0][:240] if err else "no error"
    report(title, ok, first if ok else f"exit {proc.returncode}, wanted {needles}, got: {err or 'no error'}")


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def randn(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def dloss_for(reduction, loss_shape):
    return randn(*(loss_shape if reduction == "none" else ()))


def backward(loss, dloss, x):
    loss.backward(t64(dloss))
    return x.grad.numpy()


# ---- CrossEntropyLoss, CrossEntropyLossGrad ----

def random_targets(n_classes, shape, ignore_index):
    """Class indices with about a fifth of them ignore_index."""
    t = RNG.integers(0, n_classes, shape).astype(np.int64)
    t[RNG.random(shape) < 0.2] = ignore_index
    return t


def cross_entropy_case(title, scores, target, weight, reduction, ignore_index, smoothing, same_bits=False):
    attrs = dict(reduction=reduction, label_smoothing=smoothing)
    if ignore_index != -100:
        attrs["ignore_index"] = ignore_index
    # The attribute is a float32: give torch the very same number.
    eps = float(np.float32(smoothing))
    s = t64(scores, grad=True)
    w = None if weight is None else t64(weight)
    loss = F.cross_entropy(s, torch.from_numpy(target), weight=w, reduction=reduction, ignore_index=ignore_index,
                           label_smoothing=eps)
    log_prob = F.log_softmax(s, 1).detach().numpy()
    dloss = dloss_for(reduction, target.shape)
    dscores = backward(loss, dloss, s)
    opt = [] if weight is None else [weight]
    check(f"CrossEntropyLoss {title}", "CrossEntropyLoss", [scores, target] + opt, attrs,
          [loss.detach().numpy(), log_prob], same_bits=same_bits)
    check(f"CrossEntropyLossGrad {title}", "CrossEntropyLossGrad",
          [dloss, log_prob.astype(np.float32), target] + opt, attrs, [dscores], same_bits=same_bits)


def cross_entropy_cases():
    shapes = {"2-D": (7, 5), "4-D": (2, 4, 3, 5)}
    for shape_name, shape in shapes.items():
        c = shape[1]
        target_shape = (shape[0],) + shape[2:]
        for ignore_index in (-100, 2):
            target = random_targets(c, target_shape, ignore_index)
            scores = randn(*shape, scale=2.0)
            for weighted in (False, True):
                weight = (RNG.random(c) + 0.2).astype(np.float32) if weighted else None
                for smoothing in (0.0, 0.1):
                    for reduction in REDUCTIONS:
                        title = (f"{shape_name} {reduction} weight={'yes' if weighted else 'no'} "
                                 f"smoothing={smoothing} ignore_index={ignore_index}")
                        cross_entropy_case(title, scores, target, weight, reduction, ignore_index, smoothing)
    # Every target ignored: "mean" is 0/0 = NaN and the gradient is zero, as torch.
    for weighted in (False, True):
        for smoothing in (0.0, 0.1):
            weight = (RNG.random(4) + 0.2).astype(np.float32) if weighted else None
            cross_entropy_case(f"all ignored, mean weight={'yes' if weighted else 'no'} smoothing={smoothing}",
                               randn(3, 4), np.full(3, -100, np.int64), weight, "mean", -100, smoothing)
    # Many positions: the sums run over several blocks, on several threads.
    big_shape = (4, 3, 64, 64)
    big_target = random_targets(3, (4, 64, 64), -100)
    for reduction in ("mean", "sum"):
        cross_entropy_case(f"big segmentation {reduction} smoothing=0.1", randn(*big_shape, scale=3.0), big_target,
                           (RNG.random(3) + 0.5).astype(np.float32), reduction, -100, 0.1, same_bits=True)


# ---- NLLLossGrad (and the ONNX NegativeLogLikelihoodLoss it differentiates) ----

def nll_cases():
    for shape in ((6, 5), (2, 3, 4, 2)):
        c = shape[1]
        target_shape = (shape[0],) + shape[2:]
        log_prob = F.log_softmax(t64(randn(*shape)), 1).numpy().astype(np.float32)
        for ignore_index in (-100, 1):
            target = random_targets(c, target_shape, ignore_index)
            for weighted in (False, True):
                weight = (RNG.random(c) + 0.2).astype(np.float32) if weighted else None
                opt = [] if weight is None else [weight]
                for reduction in REDUCTIONS:
                    title = f"{len(shape)}-D {reduction} weight={'yes' if weighted else 'no'} ignore_index={ignore_index}"
                    x = t64(log_prob, grad=True)
                    w = None if weight is None else t64(weight)
                    loss = F.nll_loss(x, torch.from_numpy(target), weight=w, reduction=reduction, ignore_index=ignore_index)
                    dloss = dloss_for(reduction, target_shape)
                    attrs = dict(reduction=reduction, ignore_index=ignore_index)
                    check(f"NegativeLogLikelihoodLoss {title}", "NegativeLogLikelihoodLoss",
                          [log_prob, target] + opt, attrs, [loss.detach().numpy()], domain="")
                    if ignore_index == -100:
                        del attrs["ignore_index"]  # NLLLossGrad's default
                    check(f"NLLLossGrad {title}", "NLLLossGrad", [dloss, log_prob, target] + opt, attrs,
                          [backward(loss, dloss, x)])


# ---- MSELoss, L1Loss, BCEWithLogitsLoss and their gradients ----

def pointwise_case(title, op, torch_fn, x, y, reduction, extras=(), torch_kw=None, same_bits=False):
    """extras: the optional inputs after (x, y), None where omitted."""
    xt = t64(x, grad=True)
    loss = torch_fn(xt, t64(y), reduction=reduction, **(torch_kw or {}))
    dloss = dloss_for(reduction, x.shape)
    extras = list(extras)
    attrs = dict(reduction=reduction)
    check(f"{op} {title} {reduction}", op, [x, y] + extras, attrs, [loss.detach().numpy()], same_bits=same_bits)
    check(f"{op}Grad {title} {reduction}", op + "Grad", [dloss, x, y] + extras, attrs, [backward(loss, dloss, xt)],
          same_bits=same_bits)


def pointwise_cases():
    for reduction in REDUCTIONS:
        for shape in ((5, 7), (2, 3, 4, 5)):
            x, y = randn(*shape), randn(*shape)
            pointwise_case(f"{shape}", "MSELoss", F.mse_loss, x, y, reduction)
            y_ties = np.where(RNG.random(shape) < 0.3, x, y).astype(np.float32)
            pointwise_case(f"{shape} with x == y at some elements", "L1Loss", F.l1_loss, x, y_ties, reduction)

        x, y = randn(6, 4, scale=4.0), RNG.random((6, 4)).astype(np.float32)
        pointwise_case("plain", "BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, x, y, reduction)
        weights = {"[C]": randn(4), "[N, 1]": randn(6, 1), "full": randn(6, 4)}
        pos_weight = (RNG.random(4) * 3).astype(np.float32)
        for name, w in weights.items():
            pointwise_case(f"weight {name}", "BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, x, y, reduction,
                           [w], dict(weight=t64(w)))
            pointwise_case(f"weight {name} pos_weight [C]", "BCEWithLogitsLoss", F.binary_cross_entropy_with_logits,
                           x, y, reduction, [w, pos_weight], dict(weight=t64(w), pos_weight=t64(pos_weight)))
        pointwise_case("pos_weight [C] without weight", "BCEWithLogitsLoss", F.binary_cross_entropy_with_logits,
                       x, y, reduction, [None, pos_weight], dict(pos_weight=t64(pos_weight)))
        x4, y4 = randn(2, 3, 4, 5, scale=30.0), (RNG.random((2, 3, 4, 5)) < 0.5).astype(np.float32)
        pw4 = (RNG.random((3, 1, 1)) * 3).astype(np.float32)
        pointwise_case("4-D, large logits, pos_weight [C, 1, 1]", "BCEWithLogitsLoss",
                       F.binary_cross_entropy_with_logits, x4, y4, reduction, [None, pw4], dict(pos_weight=t64(pw4)))
    big_x, big_y = randn(8, 3, 64, 64), randn(8, 3, 64, 64)
    pointwise_case("big", "MSELoss", F.mse_loss, big_x, big_y, "mean", same_bits=True)
    pointwise_case("big", "BCEWithLogitsLoss", F.binary_cross_entropy_with_logits, big_x,
                   (big_y > 0).astype(np.float32), "sum", same_bits=True)


# ---- errors ----

def error_cases():
    scores = randn(5, 10)
    bad = np.array([1, 0, 9, 12, 3], np.int64)
    expect_error("CrossEntropyLoss: a label outside [0, C)", "CrossEntropyLoss", [scores, bad], {},
                 ["label 12 at target position 3 is outside [0, 10)"], n_outputs=2)
    seg_bad = np.zeros((2, 3, 4), np.int64)
    seg_bad[1, 2, 0] = -1
    expect_error("CrossEntropyLoss 4-D: a negative label that is not ignore_index", "CrossEntropyLoss",
                 [randn(2, 5, 3, 4), seg_bad], {}, ["label -1 at target position (1, 2, 0) is outside [0, 5)"])
    expect_error("CrossEntropyLoss: -100 is a bad label when ignore_index is 0", "CrossEntropyLoss",
                 [scores, np.array([0, -100, 1, 2, 3], np.int64)], dict(ignore_index=0),
                 ["label -100 at target position 1 is outside [0, 10)"])
    expect_error("CrossEntropyLossGrad: a label outside [0, C)", "CrossEntropyLossGrad",
                 [np.float32(1.0).reshape(()), scores, bad], {}, ["label 12 at target position 3"])
    expect_error("NLLLossGrad: a label outside [0, C)", "NLLLossGrad",
                 [np.float32(1.0).reshape(()), scores, bad], {}, ["label 12 at target position 3"])
    expect_error("CrossEntropyLoss: target shape", "CrossEntropyLoss", [scores, np.zeros(4, np.int64)], {},
                 ["target [4] does not fit scores [5,10]"])
    expect_error("CrossEntropyLoss: int32 target", "CrossEntropyLoss", [scores, np.zeros(5, np.int32)], {},
                 ["target has element type", "expected int64"])
    expect_error("CrossEntropyLoss: weight shape", "CrossEntropyLoss",
                 [scores, np.zeros(5, np.int64), randn(9)], {}, ["weight [9] must be [C] with C = 10"])
    expect_error("CrossEntropyLoss: reduction", "CrossEntropyLoss", [scores, np.zeros(5, np.int64)],
                 dict(reduction="avg"), ["reduction is 'avg'"])
    expect_error("CrossEntropyLoss: label_smoothing", "CrossEntropyLoss", [scores, np.zeros(5, np.int64)],
                 dict(label_smoothing=1.5), ["label_smoothing is 1.5"])
    expect_error("CrossEntropyLossGrad: dloss not a scalar for mean", "CrossEntropyLossGrad",
                 [randn(5), scores, np.zeros(5, np.int64)], {}, ["dloss is [5]; expected a scalar"])
    expect_error("CrossEntropyLossGrad: dloss shape for none", "CrossEntropyLossGrad",
                 [randn(4), scores, np.zeros(5, np.int64)], dict(reduction="none"), ["dloss is [4]; expected [5]"])
    expect_error("MSELoss: x and y shapes differ", "MSELoss", [randn(3, 4), randn(4, 3)], {},
                 ["target [4,3] must have the shape of input [3,4]"])
    expect_error("L1LossGrad: x and y shapes differ", "L1LossGrad", [np.float32(1.0).reshape(()), randn(3, 4), randn(4)],
                 {}, ["target [4] must have the shape of input [3,4]"])
    expect_error("BCEWithLogitsLoss: weight does not broadcast", "BCEWithLogitsLoss",
                 [randn(3, 4), randn(3, 4), randn(3)], {}, ["weight [3] does not broadcast to input [3,4]"])
    expect_error("BCEWithLogitsLoss: pos_weight does not broadcast", "BCEWithLogitsLoss",
                 [randn(3, 4), randn(3, 4), None, randn(2, 3, 4)], {},
                 ["pos_weight [2,3,4] does not broadcast to input [3,4]"])
    expect_error("MSELoss: a third input", "MSELoss", [randn(3), randn(3), randn(3)], {}, ["expects 2 to 2 inputs"])


# ---- YoloV3Loss, YoloV3LossGrad: the definition of loss_train.c, written in torch ----

YOLO_ANCHORS = [float(v) for v in (40, 30, 60, 70, 110, 90, 16, 20, 30, 16, 24, 40, 5, 6, 8, 12, 14, 10)]  # pixels, heads 32, 16, 8


def bbox_giou(p, t, eps=1e-7):
    """Ultralytics' bbox_iou(p, t, x1y1x2y2=False, GIoU=True) of [n, 4] (cx, cy, w, h) boxes."""
    p1, p2 = p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2
    t1, t2 = t[:, :2] - t[:, 2:] / 2, t[:, :2] + t[:, 2:] / 2
    overlap = (torch.min(p2, t2) - torch.max(p1, t1)).clamp(0)
    inter = overlap[:, 0] * overlap[:, 1]
    w1, h1 = p2[:, 0] - p1[:, 0], p2[:, 1] - p1[:, 1] + eps
    w2, h2 = t2[:, 0] - t1[:, 0], t2[:, 1] - t1[:, 1] + eps
    union = w1 * h1 + w2 * h2 - inter + eps
    extent = torch.max(p2, t2) - torch.min(p1, t1)
    area = extent[:, 0] * extent[:, 1] + eps
    return inter / union - (area - union) / area


def yolo_reference(heads, targets, anchors, strides, balance, anchor_t=4.0, gains=(0.05, 1.0, 0.5)):
    """Returns (loss, components) of float64 heads [N, A * (5 + K), H, W]."""
    n_heads = len(heads)
    n_anchors = len(anchors) // (2 * n_heads)
    lbox = lobj = lcls = torch.zeros((), dtype=torch.float64)
    for l, p in enumerate(heads):
        batch, channels, h, w = p.shape
        no = channels // n_anchors
        pi = p.view(batch, n_anchors, no, h, w).permute(0, 1, 3, 4, 2)
        tobj = torch.zeros(batch, n_anchors, h, w, dtype=torch.float64)
        matches = []
        for a in range(n_anchors):
            anchor = [anchors[(l * n_anchors + a) * 2 + k] / strides[l] for k in range(2)]
            for t in targets.astype(np.float64):
                box = [t[2] * w, t[3] * h, t[4] * w, t[5] * h]
                ratios = [box[2] / anchor[0], box[3] / anchor[1]]
                if max(max(r, 1 / r) for r in ratios) >= anchor_t:
                    continue
                gx, gy = min(max(int(np.floor(box[0])), 0), w - 1), min(max(int(np.floor(box[1])), 0), h - 1)
                matches.append((int(t[0]), a, gy, gx, [box[0] - gx, box[1] - gy, box[2], box[3]], anchor, int(t[1])))
        if matches:
            b, a, gy, gx, tbox, anchor, cls = zip(*matches)
            ps = pi[list(b), list(a), list(gy), list(gx)]
            pxy = ps[:, :2].sigmoid() * 2 - 0.5
            pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * torch.tensor(anchor, dtype=torch.float64)
            giou = bbox_giou(torch.cat([pxy, pwh], 1), torch.tensor(tbox, dtype=torch.float64))
            lbox = lbox + (1 - giou).mean()
            for m in range(len(matches)):  # in order: the last match at a cell wins
                tobj[b[m], a[m], gy[m], gx[m]] = giou[m].detach().clamp(0)
            if no - 5 > 1:
                onehot = torch.zeros(len(matches), no - 5, dtype=torch.float64)
                onehot[range(len(matches)), list(cls)] = 1
                lcls = lcls + F.binary_cross_entropy_with_logits(ps[:, 5:], onehot)
        lobj = lobj + balance[l] * F.binary_cross_entropy_with_logits(pi[..., 4], tobj)
    components = torch.stack([gains[0] * lbox, gains[1] * lobj, gains[2] * lcls])
    return heads[0].shape[0] * components.sum(), components


def yolo_targets(count, batch, classes, image_hw):
    t = np.zeros((count, 6), np.float32)
    t[:, 0] = RNG.integers(0, batch, count)
    t[:, 1] = RNG.integers(0, classes, count)
    t[:, 2:4] = RNG.uniform(0.02, 0.98, (count, 2))
    t[:, 4] = RNG.uniform(4, 100, count) / image_hw[1]
    t[:, 5] = RNG.uniform(4, 90, count) / image_hw[0]
    return t


def yolo_case(title, heads, targets, attrs, balance):
    torch_heads = [t64(p, grad=True) for p in heads]
    strides = attrs.get("strides", [32, 16, 8])
    loss, components = yolo_reference(torch_heads, targets, attrs["anchors"], strides, balance,
                                      anchor_t=attrs.get("anchor_t", 4.0))
    dloss = randn()
    loss.backward(t64(dloss))
    check(f"YoloV3Loss {title}", "YoloV3Loss", [targets] + heads, attrs,
          [loss.detach().numpy(), components.detach().numpy()])
    check(f"YoloV3LossGrad {title}", "YoloV3LossGrad", [dloss, targets] + heads, attrs,
          [p.grad.numpy() for p in torch_heads])


def yolo_cases():
    image_hw, batch, anchors = (96, 128), 2, YOLO_ANCHORS
    for classes in (4, 1):
        heads = [randn(batch, 3 * (5 + classes), image_hw[0] // s, image_hw[1] // s) for s in (32, 16, 8)]
        targets = yolo_targets(12, batch, classes, image_hw)
        yolo_case(f"3 heads, {classes} classes", heads, targets, dict(anchors=anchors), [4.0, 1.0, 0.4])
        # The same target twice, and two targets in one cell: matches add up, the last sets objectness.
        crowded = np.concatenate([targets, targets[:1], targets[1:2] + np.float32([0, 0, 0.001, 0.001, 0.05, 0.0])])
        yolo_case(f"3 heads, {classes} classes, shared cells", heads, crowded, dict(anchors=anchors), [4.0, 1.0, 0.4])
    heads = [randn(batch, 3 * 7, image_hw[0] // 8, image_hw[1] // 8)]
    attrs = dict(anchors=anchors[12:], strides=[8], balance=[2.0], anchor_t=3.0)
    yolo_case("1 head, strides [8], balance [2], anchor_t 3", heads, yolo_targets(9, batch, 2, image_hw), attrs, [2.0])
    yolo_case("no targets", heads, np.zeros((0, 6), np.float32), attrs, [2.0])
    bad = yolo_targets(3, batch, 2, image_hw)
    bad[2, 1] = 5
    expect_error("YoloV3Loss: a class outside [0, K)", "YoloV3Loss", [bad] + heads, attrs,
                 ["target 2 has class 5; expected an integer in [0, 2)"])
    bad[2, 1], bad[1, 0] = 0, 2
    expect_error("YoloV3LossGrad: an image index outside [0, N)", "YoloV3LossGrad",
                 [np.float32(1.0).reshape(()), bad] + heads, attrs, ["target 1 has image index 2"])
    expect_error("YoloV3Loss: anchors not a whole number per head", "YoloV3Loss", [bad] + heads,
                 dict(attrs, anchors=anchors[:5]), ["anchors has 5 values"])
    expect_error("YoloV3Loss: channels not A * (5 + K)", "YoloV3Loss", [bad, randn(2, 20, 3, 4)], attrs,
                 ["head 0 is [2,20,3,4]; expected [N, 3 * (5 + classes), H, W]"])


def main():
    cross_entropy_cases()
    nll_cases()
    pointwise_cases()
    error_cases()
    yolo_cases()
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
