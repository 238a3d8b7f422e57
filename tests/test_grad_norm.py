"""Batch norm in training mode, activation gradients and dropout (domain ai.graft):
BatchNormTrain, BatchNormGrad, ReluGrad, LeakyReluGrad, SigmoidGrad, SoftmaxGrad,
LogSoftmaxGrad, DropoutTrain and DropoutGrad, each a one-node model run with
`graft run`, against PyTorch in float64:

- BatchNormTrain: Y, the saved mean and 1/sqrt(var + eps), and the running statistics
  against F.batch_norm(training=True, momentum=1 - momentum) on rank 2 to 5 inputs,
  with default and explicit epsilon/momentum, a large mean (the variance must not
  cancel), more channels than one block of the N x C kernel, omitted outputs;
- BatchNormGrad: dX, dScale and dBias against autograd through F.batch_norm, and with
  some outputs omitted;
- the activation gradients against autograd; softmax and log-softmax along every axis,
  negative axes, and the legacy (opset < 13, coerced to 2-D) form;
- DropoutTrain: the fraction dropped is within 5 standard deviations of the ratio
  (|dropped - ratio| <= 5 sqrt(ratio (1 - ratio) / n)), and so is the agreement of two
  steps' masks with that of independent masks (ratio^2 + (1 - ratio)^2); Y is exactly
  X * mask * float32(1 / (1 - ratio)); the same (seed, step) gives the same mask, a
  different step or seed another; ratio 0 keeps everything; DropoutGrad matches the mask.

Large cases also run on 1 and 3 threads and must give the same bits. Bad inputs must
fail with a message naming what is wrong.

Tolerance: |graft - torch| <= 1e-5 * max|torch| + 1e-6 (float32 kernels that sum in
double; the float64 reference sees the same float32 inputs).

usage: test_grad_norm.py GRAFT_BINARY
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
TMP = tempfile.mkdtemp(prefix="graft-grad-norm-")
RNG = np.random.default_rng(5)
REL, ABS = 1e-5, 1e-6
results = {"passed": 0, "failed": 0}


def report(title, ok, detail=""):
    title = " ".join(title.split())  # cases with no title of their own leave double spaces
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}", flush=True)


def randn(*shape, mean=0.0, std=1.0):
    return (RNG.standard_normal(shape) * std + mean).astype(np.float32)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def write_model(op, inputs, outputs, attrs):
    """A one-node model: inputs are arrays (graph inputs), outputs names ("" when omitted).
    Returns (dir, graft run args); the run writes one file per named output."""
    names = [f"in{i}" for i in range(len(inputs))]
    graph_inputs = [helper.make_tensor_value_info(n, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[v.dtype], v.shape)
                    for n, v in zip(names, inputs)]
    node = helper.make_node(op, names, outputs, name="node", domain="ai.graft", **attrs)
    graph_outputs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs if o]
    graph = helper.make_graph([node], "g", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.graft", 1)])
    write_model.count = getattr(write_model, "count", 0) + 1
    base = os.path.join(TMP, f"m{write_model.count}")
    os.makedirs(base)
    onnx.save(model, os.path.join(base, "model.onnx"))
    args = [GRAFT, "run", os.path.join(base, "model.onnx")]
    for name, arr in zip(names, inputs):
        path = os.path.join(base, name + ".pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(arr, name).SerializeToString())
        args += ["--input", path]
    return base, args + ["--output-dir", base]


def run_graft(base, args, n_outputs, threads=None):
    """Returns (list of output arrays or None, stderr)."""
    paths = [os.path.join(base, f"output_{k}.pb") for k in range(n_outputs)]
    for p in paths:
        if os.path.exists(p):
            os.remove(p)
    if threads:
        args = args + ["--threads", str(threads)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or "runtime error" in proc.stderr or "Sanitizer" in proc.stderr:
        return None, proc.stderr.strip()
    return [numpy_helper.to_array(onnx.load_tensor(p)) for p in paths], ""


def run_node(op, inputs, outputs, attrs, threads=None):
    base, args = write_model(op, inputs, outputs, attrs)
    return run_graft(base, args, sum(1 for o in outputs if o), threads)


def close(got, ref):
    """(ok, detail) of one output against its float64 reference."""
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return False, f"shape {got.shape}, expected {ref.shape}"
    diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    bound = REL * (float(np.max(np.abs(ref))) if ref.size else 0.0) + ABS
    return diff <= bound, f"max err {diff:.2e} (bound {bound:.2e})"


def check(title, op, inputs, outputs, refs, attrs, same_bits_on_threads=False):
    """Runs the node; refs lists the float64 reference of each named output."""
    base, args = write_model(op, inputs, outputs, attrs)
    got, err = run_graft(base, args, len(refs))
    if got is None:
        report(title, False, err)
        return
    verdicts = [close(g, r) for g, r in zip(got, refs)]
    named = [o for o in outputs if o]
    report(title, all(ok for ok, _ in verdicts), "; ".join(f"{n} {d}" for n, (_, d) in zip(named, verdicts)))
    if same_bits_on_threads:
        runs = [run_graft(base, args, len(refs), t)[0] for t in (1, 3)]
        same = all(r is not None and all(np.array_equal(a, b) for a, b in zip(r, got)) for r in runs)
        report(f"{title} [the same bits on 1 and 3 threads]", same)


def expect_error(title, op, inputs, outputs, attrs, needles):
    got, err = run_node(op, inputs, outputs, attrs)
    ok = got is None and all(n in err for n in needles) and "Sanitizer" not in err and "runtime error" not in err
    first = err.splitlines()[0][:240] if err else "no error"
    report(title, ok, first if ok else f"wanted {needles}, got: {err or 'no error'}")


# ---- BatchNormTrain, BatchNormGrad ----

def bn_params(c):
    scale, bias = randn(c), randn(c)
    running_mean, running_var = randn(c), (RNG.random(c) + 0.5).astype(np.float32)
    return scale, bias, running_mean, running_var


def bn_train_case(title, shape, attrs=None, mean=0.0, std=1.0, outputs=("y", "mean", "invstd", "rmean", "rvar"),
                  same_bits_on_threads=False):
    attrs = attrs or {}
    eps, momentum = attrs.get("epsilon", 1e-5), attrs.get("momentum", 0.9)
    x = randn(*shape, mean=mean, std=std)
    scale, bias, running_mean, running_var = bn_params(shape[1])
    rm, rv = t64(running_mean), t64(running_var)
    y = F.batch_norm(t64(x), rm, rv, t64(scale), t64(bias), training=True, momentum=1 - momentum, eps=eps)
    dims = [0] + list(range(2, len(shape)))
    batch_mean = t64(x).mean(dim=dims)
    invstd = 1 / torch.sqrt(t64(x).var(dim=dims, unbiased=False) + eps)
    refs = dict(y=y, mean=batch_mean, invstd=invstd, rmean=rm, rvar=rv)
    check(f"BatchNormTrain {title} {list(shape)} {attrs}", "BatchNormTrain", [x, scale, bias, running_mean, running_var],
          list(outputs), [refs[o].detach().numpy() for o in outputs if o], attrs, same_bits_on_threads)


def bn_grad_case(title, shape, mean=0.0, std=1.0, outputs=("dx", "dscale", "dbias"), same_bits_on_threads=False,
                 from_saved_stats=False):
    """Against autograd through F.batch_norm; or, with from_saved_stats, against PyTorch's
    batch norm backward given the float32 statistics graft gets (when the mean is far from
    zero, float32 cannot hold it closely enough for autograd's exact mean to be a fair
    reference)."""
    eps = 1e-5
    x, dy = randn(*shape, mean=mean, std=std), randn(*shape)
    scale, bias, _, _ = bn_params(shape[1])
    dims = [0] + list(range(2, len(shape)))
    saved_mean = t64(x).mean(dim=dims).numpy().astype(np.float32)
    saved_invstd = (1 / torch.sqrt(t64(x).var(dim=dims, unbiased=False) + eps)).numpy().astype(np.float32)
    if from_saved_stats:
        grads = torch.ops.aten.native_batch_norm_backward(t64(dy), t64(x), t64(scale), None, None, t64(saved_mean),
                                                          t64(saved_invstd), True, eps, [True, True, True])
        refs = dict(zip(("dx", "dscale", "dbias"), grads))
        title += ", from the saved statistics"
    else:
        xt, st, bt = t64(x, True), t64(scale, True), t64(bias, True)
        F.batch_norm(xt, None, None, st, bt, training=True, eps=eps).backward(t64(dy))
        refs = dict(dx=xt.grad, dscale=st.grad, dbias=bt.grad)
    check(f"BatchNormGrad {title} {list(shape)} outputs {[o for o in outputs if o]}", "BatchNormGrad",
          [dy, x, scale, saved_mean, saved_invstd], list(outputs), [refs[o].numpy() for o in outputs if o], {},
          same_bits_on_threads)


def batch_norm_cases():
    for shape in ([16, 5], [4, 3, 7], [3, 4, 5, 6], [2, 3, 3, 4, 5]):
        bn_train_case(f"rank {len(shape)}", shape)
        bn_grad_case(f"rank {len(shape)}", shape)
    bn_train_case("attributes", [4, 3, 5, 5], {"epsilon": 1e-3, "momentum": 0.7})
    bn_train_case("attributes", [8, 6], {"epsilon": 0.5, "momentum": 0.0})
    bn_train_case("mean 100, std 0.01", [4, 3, 8, 8], mean=100.0, std=0.01)
    bn_train_case("mean 100, std 0.01", [64, 7], mean=100.0, std=0.01)
    bn_grad_case("mean 100, std 0.01", [4, 3, 8, 8], mean=100.0, std=0.01, from_saved_stats=True)
    bn_grad_case("mean 100, std 0.01", [64, 7], mean=100.0, std=0.01, from_saved_stats=True)
    bn_train_case("N x C, more channels than a block", [9, 600], same_bits_on_threads=True)
    bn_grad_case("N x C, more channels than a block", [9, 600], same_bits_on_threads=True)
    bn_train_case("large", [8, 16, 30, 30], same_bits_on_threads=True)
    bn_grad_case("large", [8, 16, 30, 30], same_bits_on_threads=True)
    bn_train_case("batch 1", [1, 3, 4, 4])
    bn_train_case("Y and running stats only", [4, 3, 5], outputs=("y", "", "", "rmean", "rvar"))
    bn_train_case("Y and saved stats only", [4, 3, 5], outputs=("y", "mean", "invstd"))
    bn_train_case("Y, saved invstd and running var only", [4, 3, 5], outputs=("y", "", "invstd", "", "rvar"))
    # (a model file must name its nodes' first outputs, so dX is never omitted here)
    bn_grad_case("", [4, 3, 5], outputs=("dx", "", ""))
    bn_grad_case("", [4, 3, 5], outputs=("dx", "", "dbias"))
    bn_grad_case("", [4, 3, 5], outputs=("dx", "dscale", ""))


# ---- activation gradients ----

def activation_case(title, op, fwd, shape, attrs, grad_input="Y"):
    """fwd maps a float64 tensor to the forward output; the op gets Y = fwd(x) in float32,
    or X itself when grad_input is "X"."""
    x, dy = randn(*shape), randn(*shape)
    xt = t64(x, True)
    y = fwd(xt)
    y.backward(t64(dy))
    second = x if grad_input == "X" else y.detach().numpy().astype(np.float32)
    check(f"{op} {title} {list(shape)} {attrs}", op, [dy, second], ["dx"], [xt.grad.numpy()], attrs)


def legacy_softmax(fn, axis):
    """Softmax before opset 13: over the dims from axis on, as one."""
    def apply(x):
        return fn(x.reshape(int(np.prod(x.shape[:axis])), -1), dim=1).reshape(x.shape)
    return apply


def activation_cases():
    activation_case("", "ReluGrad", torch.relu, [3, 4, 5], {})
    activation_case("large", "ReluGrad", torch.relu, [70001], {})
    activation_case("default alpha", "LeakyReluGrad", F.leaky_relu, [3, 4, 5], {}, "X")
    activation_case("", "LeakyReluGrad", lambda x: F.leaky_relu(x, 0.2), [6, 7], {"alpha": 0.2}, "X")
    activation_case("large", "LeakyReluGrad", lambda x: F.leaky_relu(x, 0.3), [70001], {"alpha": 0.3}, "X")
    activation_case("", "SigmoidGrad", torch.sigmoid, [3, 4, 5], {})
    activation_case("large", "SigmoidGrad", torch.sigmoid, [70001], {})
    shape = [3, 4, 5, 6]
    for op, fn in (("SoftmaxGrad", torch.softmax), ("LogSoftmaxGrad", torch.log_softmax)):
        activation_case("default axis", op, lambda x: fn(x, dim=-1), shape, {})
        for axis in (0, 1, 2, 3, -1, -2, -4):
            activation_case("", op, lambda x: fn(x, dim=axis), shape, {"axis": axis})
        activation_case("legacy, default axis", op, legacy_softmax(fn, 1), shape, {"legacy": 1})
        for axis in (0, 2, 3, -1, -3):
            activation_case("legacy", op, legacy_softmax(fn, axis % 4), shape, {"axis": axis, "legacy": 1})
        activation_case("large", op, lambda x: fn(x, dim=1), [64, 40, 30], {"axis": 1})
        activation_case("rank 1", op, lambda x: fn(x, dim=0), [17], {})


# ---- DropoutTrain, DropoutGrad ----

def step(value):
    return np.array(value, dtype=np.int64)


def within(value, expected, p, n):
    """Whether a fraction over n Bernoulli(p)-like draws is within 5 standard deviations."""
    bound = 5 * np.sqrt(p * (1 - p) / n) + 1e-12
    return abs(value - expected) <= bound, f"{value:.4f} vs {expected:.4f} (bound {bound:.4f})"


def dropout_train(x, ratio, seed, at_step, threads=None):
    attrs = {"ratio": ratio} if ratio is not None else {}
    if seed is not None:
        attrs["seed"] = seed
    return run_node("DropoutTrain", [x, step(at_step)], ["y", "mask"], attrs, threads)


def dropout_cases():
    x = randn(100, 700)
    n = x.size
    for ratio in (None, 0.1, 0.5, 0.9):
        r = 0.5 if ratio is None else ratio
        title = f"DropoutTrain ratio {ratio if ratio is not None else 'default (0.5)'}"
        got, err = dropout_train(x, ratio, 7, 3)
        if got is None:
            report(title, False, err)
            continue
        y, mask = got
        if mask.dtype != np.bool_ or mask.shape != x.shape or y.shape != x.shape:
            report(f"{title}: outputs", False, f"mask {mask.dtype} {mask.shape}, y {y.shape}")
            continue
        ok, detail = within(1 - mask.mean(), r, r, n)
        report(f"{title}: fraction dropped", ok, detail)
        scale = np.float32(1) / (np.float32(1) - np.float32(r))
        report(f"{title}: Y = X * mask * scale exactly", np.array_equal(y, x * mask * scale))
        again = dropout_train(x, ratio, 7, 3, threads=1)[0]
        threads3 = dropout_train(x, ratio, 7, 3, threads=3)[0]
        report(f"{title}: same seed and step, the same mask on 1 and 3 threads",
               again is not None and threads3 is not None and np.array_equal(again[1], mask)
               and np.array_equal(threads3[1], mask) and np.array_equal(again[0], y))
        other = dropout_train(x, ratio, 7, 4)[0]
        agreement = float((other[1] == mask).mean())
        ok, detail = within(agreement, r * r + (1 - r) * (1 - r), 2 * r * (1 - r), n)
        report(f"{title}: step 4's mask differs from step 3's as an independent one would", ok, detail)
        other_seed = dropout_train(x, ratio, 8, 3)[0]
        report(f"{title}: another seed, another mask", not np.array_equal(other_seed[1], mask))
        dy = randn(*x.shape)
        grad, err = run_node("DropoutGrad", [dy, mask], ["dx"], {"ratio": r})
        report(f"DropoutGrad ratio {r}: dX = dY * mask * scale exactly",
               grad is not None and np.array_equal(grad[0], dy * mask * scale), err)
    got, err = dropout_train(x, 0.0, 1, 0)
    report("DropoutTrain ratio 0 keeps everything",
           got is not None and bool(got[1].all()) and np.array_equal(got[0], x), err)
    got, err = dropout_train(randn(5, 7), None, None, 0)
    report("DropoutTrain default seed, step 0", got is not None and got[1].shape == (5, 7), err)
    got, err = run_node("DropoutTrain", [x, step(1)], ["y", ""], {"ratio": 0.25})
    report("DropoutTrain without the mask output",
           got is not None and np.array_equal(got[0], dropout_train(x, 0.25, 0, 1)[0][0]), err)


# ---- bad inputs ----

def error_cases():
    scale, bias, rm, rv = bn_params(4)
    x = randn(2, 3, 4, 4)
    expect_error("BatchNormTrain: channel-count mismatch", "BatchNormTrain", [x, scale, bias, rm, rv],
                 ["y"], {}, ["scale has 4 elements, X has 3 channels"])
    expect_error("BatchNormTrain: rank 1", "BatchNormTrain", [randn(4), scale, bias, rm, rv], ["y"], {},
                 ["X has rank 1"])
    s3, b3, m3, v3 = bn_params(3)
    expect_error("BatchNormTrain: one value per channel", "BatchNormTrain", [randn(1, 3), s3, b3, m3, v3], ["y"], {},
                 ["1 value(s) per channel", "more than one"])
    expect_error("BatchNormGrad: saved_invstd channel mismatch", "BatchNormGrad", [x, x, s3, m3, randn(5)],
                 ["dx"], {}, ["saved_invstd has 5 elements, X has 3 channels"])
    expect_error("BatchNormGrad: dY shape", "BatchNormGrad", [randn(2, 3, 4, 5), x, s3, m3, v3], ["dx"], {},
                 ["dY has shape [2,3,4,5], X has [2,3,4,4]"])
    for ratio in (1.0, -0.1, 1.5):
        expect_error(f"DropoutTrain: ratio {ratio}", "DropoutTrain", [x, step(0)], ["y", "mask"], {"ratio": ratio},
                     ["ratio is", "it must be in [0, 1)"])
    mask = np.ones(x.shape, dtype=np.bool_)
    expect_error("DropoutGrad: ratio 1", "DropoutGrad", [x, mask], ["dx"], {"ratio": 1.0}, ["it must be in [0, 1)"])
    expect_error("DropoutGrad: mask not bool", "DropoutGrad", [x, x], ["dx"], {},
                 ["mask has element type float32; it must be bool"])
    expect_error("DropoutTrain: step is float", "DropoutTrain", [x, np.zeros((), np.float32)], ["y"], {},
                 ["step has element type float32; it must be int64"])
    expect_error("DropoutTrain: step has 2 values", "DropoutTrain", [x, np.zeros(2, np.int64)], ["y"], {},
                 ["step has 2 values"])
    expect_error("ReluGrad: shape mismatch", "ReluGrad", [randn(3, 4), randn(4, 3)], ["dx"], {},
                 ["dY has shape [3,4], Y has [4,3]"])
    expect_error("SoftmaxGrad: axis out of range", "SoftmaxGrad", [randn(3, 4), randn(3, 4)], ["dx"], {"axis": 2},
                 ["axis"])


batch_norm_cases()
activation_cases()
dropout_cases()
error_cases()
print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
