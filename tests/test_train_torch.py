#!/usr/bin/python3
"""Training with `graft train` against the same training in PyTorch.

    test_train_torch.py GRAFT_EXE [DEVICE]

DEVICE (cpu, cuda, cuda:N; default cpu) is where graft trains: with a GPU the same
agreement is asked of the CUDA backend (TF32 off, graft's default). Without a CUDA
device it prints SKIP and exits 77.

ResNet18 with BatchNormalization kept and a new 10-class head, on one seeded
batch of 8 at 64x64, 5 steps:
  (a) every layer, SGD(lr 0.01, momentum 0.9, Nesterov, weight decay 5e-4);
  (b) the head only, Adam(lr 1e-3) (BatchNorm still in training mode, as
      PyTorch's model.train() leaves it, so running statistics move everywhere).
Per-step losses must agree to 1e-3 relative; the head's weights and the last
BatchNorm's weights and running statistics after the 5 steps to 2e-3 relative
(max |graft - torch| / max |torch| per tensor).
A small CNN: the first step's gradient of every parameter (from one SGD step
with lr 1: g = w0 - w1), and 20 steps of Adam with L2 weight decay and of AdamW
(losses and final parameters); a cosine schedule with warm-up, parameter groups
with their own rates and weight decay, and gradual unfreezing under Adam, each
against torch's own (losses and parameters to 1e-4).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper
from torch import nn

GRAFT = sys.argv[1] if len(sys.argv) > 1 else "graft"
DEVICE = sys.argv[2] if len(sys.argv) > 2 else "cpu"
failures = []
passes = 0


def check(what, ok, detail=""):
    global passes
    print(f"{'ok  ' if ok else 'FAIL'} {what}{'  ' + detail if detail else ''}", flush=True)
    if ok:
        passes += 1
    else:
        failures.append(what)


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def write_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def export(model, x, path):
    """Exports with BatchNormalization kept (in inference form) and parameter names kept."""
    model.eval()
    torch.onnx.export(model, torch.from_numpy(x), path, opset_version=13, training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def torch_train(model, x, y, optimizer, steps):
    model.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return losses


def graft_train(tmp, model_path, x, y, steps, flags, tag):
    xs, ys = os.path.join(tmp, "x.pb"), os.path.join(tmp, "y.pb")
    write_pb(xs, x, "input")
    write_pb(ys, y, "labels")
    log, out = os.path.join(tmp, tag + ".csv"), os.path.join(tmp, tag + ".onnx")
    cmd = [GRAFT, "train", model_path, "--inputs", xs, "--labels", ys, "--steps", str(steps), "--batch", str(len(x)),
           "--no-shuffle", "--log", log, "--out", out, "--quiet", "--device", DEVICE] + flags
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout + r.stderr)
        return None, None
    rows = [line.split(",") for line in open(log).read().split("\n")[1:] if line]
    losses = [float(row[2]) for row in rows]
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer}
    return losses, weights


def compare_losses(tag, ours, theirs, tol):
    if ours is None:
        check(f"{tag}: graft train ran", False)
        return
    worst = max(abs(a - b) / abs(b) for a, b in zip(ours, theirs))
    check(f"{tag}: {len(ours)} per-step losses within {tol:g} relative", len(ours) == len(theirs) and worst <= tol,
          f"worst {worst:.2e}; graft {['%.6f' % v for v in ours]} torch {['%.6f' % v for v in theirs]}")


def compare_tensors(tag, weights, state, names, tol):
    if weights is None:
        return
    for name in names:
        ref = state[name].detach().numpy()
        if name not in weights:
            check(f"{tag}: {name} is in the exported model", False)
            continue
        err = rel_err(weights[name], ref)
        check(f"{tag}: {name} within {tol:g}", err <= tol, f"error {err:.2e}")


def resnet18_cases(tmp):
    torch.manual_seed(0)
    base = torchvision.models.resnet18(num_classes=10)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 64, 64)).astype(np.float32)
    y = rng.integers(0, 10, 8).astype(np.int64)
    path = os.path.join(tmp, "resnet18_bn10.onnx")
    export(base, x, path)
    init = {k: v.clone() for k, v in base.state_dict().items()}
    last_bn = ["layer4.1.bn2.weight", "layer4.1.bn2.bias", "layer4.1.bn2.running_mean", "layer4.1.bn2.running_var"]
    head = ["fc.weight", "fc.bias"]

    model = torchvision.models.resnet18(num_classes=10)
    model.load_state_dict(init)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    ref = torch_train(model, x, y, opt, 5)
    losses, weights = graft_train(tmp, path, x, y, 5, ["--optim", "sgd", "--lr", "0.01", "--momentum", "0.9",
                                                        "--nesterov", "--weight-decay", "5e-4"], "sgd")
    compare_losses("resnet18 SGD all layers", losses, ref, 1e-3)
    compare_tensors("resnet18 SGD all layers", weights, model.state_dict(), head + last_bn, 2e-3)

    model = torchvision.models.resnet18(num_classes=10)
    model.load_state_dict(init)
    opt = torch.optim.Adam(model.fc.parameters(), lr=1e-3)
    ref = torch_train(model, x, y, opt, 5)
    losses, weights = graft_train(tmp, path, x, y, 5, ["--optim", "adam", "--lr", "1e-3", "--trainable", "fc.*"],
                                  "adam_head")
    compare_losses("resnet18 Adam head only", losses, ref, 1e-3)
    compare_tensors("resnet18 Adam head only", weights, model.state_dict(), head + last_bn, 2e-3)
    if weights is not None:
        frozen = "layer1.0.conv1.weight"
        check("resnet18 Adam head only: a frozen conv weight is unchanged",
              np.array_equal(weights[frozen], init[frozen].numpy()))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            # No bias before a BatchNorm in training mode: its gradient is zero in exact
            # arithmetic, so both sides compute rounding noise (and AdamW normalises it).
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.1),
            nn.AvgPool2d(2), nn.Conv2d(16, 16, 1), nn.Sigmoid())
        self.head = nn.Linear(16 * 2 * 2, 5)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def small_cnn_cases(tmp):
    torch.manual_seed(1)
    base = SmallCNN()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 5, 6).astype(np.int64)
    path = os.path.join(tmp, "small_cnn.onnx")
    export(base, x, path)
    init = {k: v.clone() for k, v in base.state_dict().items()}
    names = [n for n, _ in base.named_parameters()]

    # First-step gradients: one plain SGD step with lr 1 moves each parameter by -grad.
    model = SmallCNN()
    model.load_state_dict(init)
    model.train()
    loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    _, weights = graft_train(tmp, path, x, y, 1, ["--optim", "sgd", "--lr", "1"], "grad")
    if weights is None:
        check("small CNN: graft train ran", False)
    else:
        for name, p in model.named_parameters():
            ours = init[name].numpy() - weights[name]
            err = rel_err(ours, p.grad.numpy())
            check(f"small CNN: first-step gradient of {name} within 1e-4", err <= 1e-4, f"error {err:.2e}")

    for flag, cls, kwargs in [("adam", torch.optim.Adam, dict(lr=1e-3, weight_decay=1e-2)),
                              ("adamw", torch.optim.AdamW, dict(lr=1e-3, weight_decay=1e-2))]:
        model = SmallCNN()
        model.load_state_dict(init)
        ref = torch_train(model, x, y, cls(model.parameters(), **kwargs), 20)
        losses, weights = graft_train(tmp, path, x, y, 20, ["--optim", flag, "--lr", "1e-3", "--weight-decay", "1e-2"],
                                      flag)
        compare_losses(f"small CNN {flag} 20 steps", losses, ref, 1e-3)
        compare_tensors(f"small CNN {flag} 20 steps", weights, model.state_dict(), names, 2e-3)

    # --bn-momentum: the exported model says 0.1 (ONNX 0.9); both sides train with 0.3.
    model = SmallCNN()
    model.load_state_dict(init)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.3
    torch_train(model, x, y, torch.optim.SGD(model.parameters(), lr=0.01), 3)
    _, weights = graft_train(tmp, path, x, y, 3, ["--optim", "sgd", "--lr", "0.01", "--bn-momentum", "0.3"], "bn_m")
    stats = [n for n in model.state_dict() if n.endswith(("running_mean", "running_var"))]
    compare_tensors("small CNN --bn-momentum 0.3, 3 steps", weights, model.state_dict(), stats, 1e-4)


def graft_lrs(tmp, tag):
    rows = [line.split(",") for line in open(os.path.join(tmp, tag + ".csv")).read().split("\n")[1:] if line]
    return [float(row[3]) for row in rows]


def schedule_group_unfreeze_cases(tmp):
    """A schedule with warm-up, parameter groups, and gradual unfreezing, each as torch does it."""
    torch.manual_seed(2)
    base = SmallCNN()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 5, 6).astype(np.int64)
    path = os.path.join(tmp, "small_cnn_sched.onnx")
    export(base, x, path)
    init = {k: v.clone() for k, v in base.state_dict().items()}
    names = [n for n, _ in base.named_parameters()]

    # Cosine annealing over 8 steps after a 3-step linear warm-up from a third of the rate.
    model = SmallCNN()
    model.load_state_dict(init)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / 3, total_iters=3),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)])
    model.train()
    ref, ref_lrs = [], []
    for _ in range(10):
        ref_lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        ref.append(loss.item())
        loss.backward()
        opt.step()
        sched.step()
    losses, weights = graft_train(tmp, path, x, y, 10, ["--optim", "sgd", "--lr", "0.05", "--momentum", "0.9",
                                                        "--sched", "cosine:8:warmup=3"], "cosine")
    if losses is not None:
        lrs = graft_lrs(tmp, "cosine")
        worst = max(abs(a - b) for a, b in zip(lrs, ref_lrs)) / max(ref_lrs)
        check("cosine with warm-up: the rate of every step is torch's", worst < 1e-6, f"worst {worst:.1e}")
    compare_losses("cosine with warm-up", losses, ref, 1e-4)
    compare_tensors("cosine with warm-up", weights, model.state_dict(), names, 1e-4)

    # Discriminative rates: the head at 10x, the first conv at 0.1x without weight decay.
    model = SmallCNN()
    model.load_state_dict(init)
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    first = [p for n, p in model.named_parameters() if n.startswith("features.0.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith(("head.", "features.0."))]
    opt = torch.optim.SGD([{"params": head, "lr": 0.1}, {"params": first, "lr": 0.001, "weight_decay": 0},
                           {"params": rest}], lr=0.01, momentum=0.9, weight_decay=1e-3)
    ref = torch_train(model, x, y, opt, 6)
    losses, weights = graft_train(tmp, path, x, y, 6, ["--optim", "sgd", "--lr", "0.01", "--momentum", "0.9",
                                                       "--weight-decay", "1e-3", "--group", "head.*:10",
                                                       "--group", "features.0.*:0.1:0"], "groups")
    compare_losses("parameter groups", losses, ref, 1e-4)
    compare_tensors("parameter groups", weights, model.state_dict(), names, 1e-4)

    # Gradual unfreezing with Adam: the head alone for 3 steps, then everything; the
    # parameters that join start their own step count (Adam's bias correction) then.
    model = SmallCNN()
    model.load_state_dict(init)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    ref = []
    for step in range(8):
        for n, p in model.named_parameters():
            p.requires_grad_(step >= 3 or n.startswith("head."))
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        ref.append(loss.item())
        loss.backward()
        opt.step()
    losses, weights = graft_train(tmp, path, x, y, 8, ["--optim", "adam", "--lr", "1e-3", "--trainable", "head.*",
                                                       "--unfreeze-at", "4"], "unfreeze")
    compare_losses("unfreezing at step 4", losses, ref, 1e-4)
    compare_tensors("unfreezing at step 4", weights, model.state_dict(), names, 1e-4)


class TinyFCN(nn.Module):
    """FCN-8s in miniature: three score layers, two learned x2 upsamplers, a fixed
    bilinear x8 one, and the crops that align the maps (export.py's FCN8s, small)."""

    def __init__(self, n_classes):
        super().__init__()
        block = lambda a, b: nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True))
        self.to_pool3 = nn.Sequential(block(3, 8), block(8, 8), block(8, 8))
        self.to_pool4 = block(8, 16)
        self.to_pool5 = block(16, 16)
        self.score_fr = nn.Conv2d(16, n_classes, 1)
        self.score_pool4 = nn.Conv2d(16, n_classes, 1)
        self.score_pool3 = nn.Conv2d(8, n_classes, 1)
        self.upscore2 = nn.ConvTranspose2d(n_classes, n_classes, 4, stride=2, padding=1, bias=False)
        self.upscore_pool4 = nn.ConvTranspose2d(n_classes, n_classes, 4, stride=2, padding=1, bias=False)
        self.upscore8 = nn.ConvTranspose2d(n_classes, n_classes, 16, stride=8, padding=4, bias=False)
        filt = torch.outer(torch.tensor([1 - abs(i - 7.5) / 8 for i in range(16)]),
                           torch.tensor([1 - abs(i - 7.5) / 8 for i in range(16)]))
        with torch.no_grad():
            self.upscore8.weight.zero_()
            for c in range(n_classes):
                self.upscore8.weight[c, c] = filt

    def forward(self, x):
        pool3 = self.to_pool3(x)
        pool4 = self.to_pool4(pool3)
        up = self.upscore2(self.score_fr(self.to_pool5(pool4)))
        up = self.upscore_pool4(up + self.score_pool4(pool4))
        return self.upscore8(up + self.score_pool3(pool3))


def segmentation_head_cases(tmp):
    """--replace-head on an FCN: every score layer and upsampler gets the new class
    count, the bilinear upsampler stays bilinear, PyTorch loads the result by name,
    and per-pixel cross-entropy training from there agrees with PyTorch's."""
    torch.manual_seed(3)
    base = TinyFCN(21)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    y = rng.integers(0, 3, (2, 64, 64)).astype(np.int64)
    y[0, :4, :4] = -100  # ignored pixels
    path = os.path.join(tmp, "tiny_fcn21.onnx")
    base.eval()
    torch.onnx.export(base, torch.from_numpy(x), path, opset_version=13, do_constant_folding=False,
                      input_names=["input"], output_names=["scores"],
                      dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}})
    # lr 0: the new head as graft initialised it, unchanged (no BatchNorm to move).
    _, start = graft_train(tmp, path, x, y, 1, ["--optim", "sgd", "--lr", "0", "--replace-head", "3"], "fcn_head")
    if start is None:
        check("FCN head replacement: graft train ran", False)
        return
    shapes = {k: tuple(v.shape) for k, v in start.items()}
    check("FCN head: the three score layers make 3 classes",
          shapes["score_fr.weight"] == (3, 16, 1, 1) and shapes["score_pool4.weight"] == (3, 16, 1, 1)
          and shapes["score_pool3.weight"] == (3, 8, 1, 1) and shapes["score_fr.bias"] == (3,), str(shapes))
    check("FCN head: the upsamplers map 3 classes to 3",
          all(shapes[k][:2] == (3, 3) for k in ("upscore2.weight", "upscore_pool4.weight", "upscore8.weight")))
    up8 = start["upscore8.weight"]
    check("FCN head: the bilinear upsampler stays channel-wise bilinear",
          all(np.array_equal(up8[c, c], base.upscore8.weight[0, 0].detach().numpy()) for c in range(3))
          and np.count_nonzero(up8 * (1 - np.eye(3)[:, :, None, None])) == 0)
    bound = 1 / np.sqrt(16)
    check("FCN head: a new score layer is drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
          np.abs(start["score_fr.weight"]).max() <= bound and np.abs(start["score_fr.weight"]).max() > 0.5 * bound)

    model = TinyFCN(3)
    missing = model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in start.items()}, strict=True)
    check("FCN head: PyTorch loads the new model's weights by name", not missing.missing_keys)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ref = torch_train(model, x, y, opt, 4)
    head_path = os.path.join(tmp, "fcn_head.onnx")
    losses, weights = graft_train(tmp, head_path, x, y, 4, ["--optim", "sgd", "--lr", "0.05", "--momentum", "0.9"],
                                  "fcn_train")
    if weights is not None:
        check("FCN training moves the score layers", not np.array_equal(weights["score_fr.weight"], start["score_fr.weight"])
              and not np.array_equal(weights["score_pool3.bias"], start["score_pool3.bias"]))
    compare_losses("FCN per-pixel cross-entropy", losses, ref, 1e-4)
    compare_tensors("FCN per-pixel cross-entropy", weights, model.state_dict(),
                    ["score_fr.weight", "score_pool3.bias", "upscore2.weight", "to_pool3.0.0.weight"], 1e-4)


def device_missing(tmp):
    """Why graft cannot run on DEVICE here (no backend, no GPU), or None."""
    if DEVICE == "cpu":
        return None
    path = os.path.join(tmp, "probe.onnx")
    export(nn.Linear(4, 2), np.zeros((1, 4), np.float32), path)
    r = subprocess.run([GRAFT, "bench", path, "--device", DEVICE, "--runs", "1", "--warmup", "0"],
                       capture_output=True, text=True)
    return r.stderr.strip() if r.returncode and "CUDA" in r.stderr else None


def main():
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        missing = device_missing(tmp)
        if missing:
            print(f"SKIP: training on {DEVICE}: {missing}")
            return 77
        small_cnn_cases(tmp)
        schedule_group_unfreeze_cases(tmp)
        segmentation_head_cases(tmp)
        resnet18_cases(tmp)
    print(f"{passes} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
