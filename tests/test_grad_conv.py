"""Convolution and pooling gradient ops (domain ai.graft): ConvGradInput,
ConvGradWeight (also as ConvTranspose's weight gradient), MaxPoolGrad,
AveragePoolGrad and GlobalAveragePoolGrad, each a one-node model run with
`graft run`, against PyTorch autograd in float64 on random cases: 1 to 3 spatial
dims, kernels 1/3/5/7, non-square, strides 1/2/3, symmetric and asymmetric pads,
dilations, groups (depthwise too), auto_pad, ceil_mode, count_include_pad, ties in
MaxPool's windows. Asymmetric and auto pads are applied with F.pad before the torch
op. Every case runs twice: with the oneDNN fast paths (DNNL_VERBOSE shows that the
backward convolutions ran in oneDNN) and with GRAFT_NO_FASTPATH=1 (the reference
kernels, which must also give the same bits on 1 and 3 threads). Bad inputs must
fail with a message naming what is wrong.

Tolerance: |graft - torch| <= 1e-5 * max|torch| + 1e-6; float32 sums of at most a
few thousand products stay well inside it (the reference kernels sum in double).

usage: test_grad_conv.py GRAFT_BINARY
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
TMP = tempfile.mkdtemp(prefix="graft-grad-conv-")
RNG = np.random.default_rng(11)
REL, ABS = 1e-5, 1e-6
MODES = {"fast": {"DNNL_VERBOSE": "1"}, "reference": {"GRAFT_NO_FASTPATH": "1"}}
results = {"passed": 0, "failed": 0}


class Const:
    """An input given as an initializer, so the session sees its values when it plans."""

    def __init__(self, value):
        self.value = value


def write_model(op, inputs, attrs):
    """Writes a one-node model and its input files; returns (model dir, graft run args)."""
    graph_inputs, inits, names, feeds = [], [], [], []
    for i, v in enumerate(inputs):
        name = f"in{i}"
        names.append(name)
        if isinstance(v, Const):
            inits.append(numpy_helper.from_array(v.value, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[v.dtype], v.shape))
            feeds.append((name, v))
    node = helper.make_node(op, names, ["out"], name="node", domain="ai.graft", **attrs)
    graph = helper.make_graph([node], "g", graph_inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              inits)
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


def run_graft(base, args, mode, threads=None):
    """Runs the model in a mode (on `threads` threads, else one per core); returns
    (output or None, stderr, stdout)."""
    out = os.path.join(base, "output_0.pb")
    if os.path.exists(out):
        os.remove(out)
    if threads:
        args = args + ["--threads", str(threads)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, **MODES[mode]})
    if proc.returncode != 0 or "runtime error" in proc.stderr or "Sanitizer" in proc.stderr:
        return None, proc.stderr.strip(), proc.stdout
    return numpy_helper.to_array(onnx.load_tensor(out)), "", proc.stdout


def report(title, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}", flush=True)


def check(title, op, inputs, ref, attrs, onednn_primitive=None):
    """Runs the node in both modes and compares with ref. onednn_primitive, when given,
    must show in oneDNN's verbose log of the fast mode (and not of the reference one)."""
    ref = np.asarray(ref, dtype=np.float64)
    base, args = write_model(op, inputs, attrs)
    for mode in MODES:
        got, err, log = run_graft(base, args, mode)
        name = f"{title} [{mode}]"
        if got is None:
            report(name, False, err)
            continue
        if got.shape != ref.shape:
            report(name, False, f"shape {got.shape}, expected {ref.shape}")
            continue
        diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        bound = REL * (float(np.max(np.abs(ref))) if ref.size else 0.0) + ABS
        detail = f"max err {diff:.2e} (bound {bound:.2e})"
        ran_onednn = onednn_primitive is not None and f",{onednn_primitive}," in log
        if onednn_primitive is not None and ran_onednn != (mode == "fast"):
            report(name, False, f"{detail}; oneDNN {onednn_primitive} {'ran' if ran_onednn else 'did not run'}")
            continue
        report(name, diff <= bound, detail)
        if mode == "reference":
            same = [np.array_equal(run_graft(base, args, mode, t)[0], got) for t in (1, 3)]
            report(f"{title} [reference: the same bits on 1 and 3 threads]", all(same))


def expect_error(title, op, inputs, attrs, needles):
    base, args = write_model(op, inputs, attrs)
    got, err, _ = run_graft(base, args, "reference")
    ok = got is None and all(n in err for n in needles) and "Sanitizer" not in err and "runtime error" not in err
    first = err.splitlines()[0][:240] if err else "no error"
    report(title, ok, first if ok else f"wanted {needles}, got: {err or 'no error'}")


# ---- geometry (as graft's gf_window_forward computes it) ----

def window(in_sizes, kernel, strides, dilations, pads, auto_pad="NOTSET", ceil_mode=False):
    """Returns (out sizes, pad_begin, pad_end) of a forward window."""
    n = len(in_sizes)
    out, pb, pe = [], list(pads[:n]), list(pads[n:])
    for d in range(n):
        ext = (kernel[d] - 1) * dilations[d] + 1
        s = strides[d]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-in_sizes[d] // s)
            total = max(0, (o - 1) * s + ext - in_sizes[d])
            pb[d] = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            pe[d] = total - pb[d]
            out.append(o)
            continue
        if auto_pad == "VALID":
            pb[d] = pe[d] = 0
        span = in_sizes[d] + pb[d] + pe[d] - ext
        assert span >= 0
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= in_sizes[d] + pb[d]:
            o -= 1
        out.append(o)
    return out, pb, pe


def torch_pads(pb, pe):
    """F.pad's argument: the last dim first."""
    return [p for d in reversed(range(len(pb))) for p in (pb[d], pe[d])]


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def shape64(s):
    return np.array(s, dtype=np.int64)


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


# ---- ConvGradInput, ConvGradWeight ----

def random_conv_case(nsp, group_kind):
    kernel = [int(RNG.choice([1, 3, 5, 7] if nsp < 3 else [1, 3])) for _ in range(nsp)]
    strides = [int(RNG.choice([1, 2, 3])) for _ in range(nsp)]
    dilations = [int(RNG.choice([1, 1, 2])) for _ in range(nsp)]
    symmetric = RNG.random() < 0.5
    pb = [int(RNG.integers(0, k)) if k > 1 else 0 for k in kernel]
    pe = list(pb) if symmetric else [int(RNG.integers(0, k + 1)) for k in kernel]
    auto_pad = str(RNG.choice(["NOTSET"] * 5 + ["SAME_UPPER", "SAME_LOWER", "VALID"]))
    group = {"plain": 1, "grouped": int(RNG.choice([2, 3])), "depthwise": int(RNG.choice([3, 4]))}[group_kind]
    cg = 1 if group_kind == "depthwise" else int(RNG.integers(1, 4))
    mg = int(RNG.integers(1, 3)) if group_kind == "depthwise" else int(RNG.integers(1, 4))
    limit = {1: 24, 2: 12, 3: 6}[nsp]
    in_sizes = [int(RNG.integers((k - 1) * dl + 1, (k - 1) * dl + 1 + limit)) for k, dl in zip(kernel, dilations)]
    return dict(n=int(RNG.integers(1, 4)), c=group * cg, m=group * mg, group=group, kernel=kernel, strides=strides,
                dilations=dilations, pads=pb + pe, auto_pad=auto_pad, in_sizes=in_sizes)


def conv_attrs(case, with_kernel_shape=True):
    attrs = dict(strides=case["strides"], dilations=case["dilations"], group=case["group"])
    if case["auto_pad"] == "NOTSET":
        attrs["pads"] = case["pads"]
    else:
        attrs["auto_pad"] = case["auto_pad"]
    if with_kernel_shape:
        attrs["kernel_shape"] = case["kernel"]
    return attrs


def describe(case):
    pads = case["auto_pad"] if case["auto_pad"] != "NOTSET" else f"pads={case['pads']}"
    return (f"{case['n']}x{case['c']}x{'x'.join(map(str, case['in_sizes']))} -> {case['m']} k={case['kernel']} "
            f"s={case['strides']} d={case['dilations']} g={case['group']} {pads}")


def test_conv(case, dynamic_shape=False):
    nsp = len(case["in_sizes"])
    x_shape = [case["n"], case["c"]] + case["in_sizes"]
    w_shape = [case["m"], case["c"] // case["group"]] + case["kernel"]
    out, pb, pe = window(case["in_sizes"], case["kernel"], case["strides"], case["dilations"], case["pads"],
                         case["auto_pad"])
    x, w, dy = randn(*x_shape), randn(*w_shape), randn(case["n"], case["m"], *out)
    xt, wt = t64(x, True), t64(w, True)
    y = CONV[nsp](F.pad(xt, torch_pads(pb, pe)), wt, stride=case["strides"], dilation=case["dilations"],
                  groups=case["group"])
    assert list(y.shape) == list(dy.shape)
    y.backward(t64(dy))
    attrs = conv_attrs(case, with_kernel_shape=RNG.random() < 0.5)
    title = describe(case) + (" (x_shape known only when running)" if dynamic_shape else "")
    x_shape_in = shape64(x_shape) if dynamic_shape else Const(shape64(x_shape))
    check(f"ConvGradInput {title}", "ConvGradInput", [dy, w, x_shape_in], xt.grad.numpy(), attrs, "backward_data")
    check(f"ConvGradWeight {title}", "ConvGradWeight", [dy, x, Const(shape64(w_shape))], wt.grad.numpy(), attrs,
          "backward_weights")


def test_conv_transpose_weight(nsp):
    """ConvTranspose(x, W)'s weight gradient is ConvGradWeight(x, dy, shape of W)."""
    kernel = [int(RNG.choice([1, 3, 5] if nsp < 3 else [1, 3])) for _ in range(nsp)]
    strides = [int(RNG.choice([1, 2, 3])) for _ in range(nsp)]
    dilations = [int(RNG.choice([1, 2])) for _ in range(nsp)]
    out_pad = [int(RNG.integers(0, s)) for s in strides]
    in_sizes = [int(RNG.integers(1, {1: 10, 2: 6, 3: 4}[nsp])) for _ in range(nsp)]
    # Pads that leave at least one output position.
    full = [s * (i - 1) + o + (k - 1) * dl + 1 for s, i, o, k, dl in zip(strides, in_sizes, out_pad, kernel, dilations)]
    pb = [int(RNG.integers(0, min(k, f))) for k, f in zip(kernel, full)]
    pe = [int(RNG.integers(0, min(k, f - b))) for k, f, b in zip(kernel, full, pb)]
    group = int(RNG.choice([1, 2]))
    n, c, m = int(RNG.integers(1, 3)), group * int(RNG.integers(1, 3)), group * int(RNG.integers(1, 4))
    x, w = randn(n, c, *in_sizes), randn(c, m // group, *kernel)
    xt, wt = t64(x, True), t64(w, True)
    full = CONV_T[nsp](xt, wt, stride=strides, dilation=dilations, groups=group)
    # ONNX's output: output_padding zeros appended at the end, then pads cropped.
    full = F.pad(full, torch_pads([0] * nsp, out_pad))
    y = full[(slice(None), slice(None)) + tuple(slice(pb[d], full.shape[2 + d] - pe[d]) for d in range(nsp))]
    dy = randn(*y.shape)
    y.backward(t64(dy))
    attrs = dict(strides=strides, dilations=dilations, group=group, pads=pb + pe)
    title = (f"ConvTranspose weight {n}x{c}x{'x'.join(map(str, in_sizes))} -> {m} k={kernel} s={strides} "
             f"d={dilations} g={group} pads={pb + pe} output_padding={out_pad}")
    check(title, "ConvGradWeight", [x, dy, Const(shape64(w.shape))], wt.grad.numpy(), attrs, "backward_weights")


# ---- pools ----

def random_pool_case(nsp, kind):
    kernel = [int(RNG.choice([1, 2, 3, 5] if nsp < 3 else [1, 2, 3])) for _ in range(nsp)]
    strides = [int(RNG.choice([1, 2, 3])) for _ in range(nsp)]
    dilations = [int(RNG.choice([1, 1, 2])) for _ in range(nsp)]
    pb = [int(RNG.integers(0, k)) if k > 1 else 0 for k in kernel]
    pe = list(pb) if RNG.random() < 0.5 else [int(RNG.integers(0, k)) for k in kernel]
    auto_pad = str(RNG.choice(["NOTSET"] * 5 + ["SAME_UPPER", "SAME_LOWER", "VALID"]))
    limit = {1: 20, 2: 10, 3: 6}[nsp]
    in_sizes = [int(RNG.integers((k - 1) * dl + 1, (k - 1) * dl + 1 + limit)) for k, dl in zip(kernel, dilations)]
    case = dict(kind=kind, n=int(RNG.integers(1, 3)), c=int(RNG.integers(1, 4)), kernel=kernel, strides=strides,
                dilations=dilations, pads=pb + pe, auto_pad=auto_pad, in_sizes=in_sizes,
                ceil_mode=int(RNG.random() < 0.4), count_include_pad=int(RNG.random() < 0.5),
                ties=kind == "max" and RNG.random() < 0.4)
    return case


def windows_touch_input(case, out, pb):
    """MaxPool and AveragePool refuse windows that cover only padding."""
    for d, size in enumerate(case["in_sizes"]):
        for o in range(out[d]):
            start = o * case["strides"][d] - pb[d]
            taps = [start + k * case["dilations"][d] for k in range(case["kernel"][d])]
            if not any(0 <= t < size for t in taps):
                return False
    return True


def sum_pool(x, kernel, strides, dilations):
    """Sums over each window (floor mode, no padding), as a depthwise conv with ones."""
    nsp, c = x.dim() - 2, x.shape[1]
    ones = torch.ones((c, 1, *kernel), dtype=x.dtype)
    return CONV[nsp](x, ones, stride=strides, dilation=dilations, groups=c)


def pool_reference(case, x, dy):
    """dX from PyTorch autograd. The input is padded explicitly so exactly `out`
    windows fit in floor mode (ceil_mode's extra windows reach past the end pad);
    AveragePool is a ratio of window sums, of X and of a mask of the positions its
    divisor counts: X alone, or with count_include_pad X and its pads but not what
    ceil_mode reaches past them."""
    nsp = len(case["in_sizes"])
    k, s, dl = case["kernel"], case["strides"], case["dilations"]
    out, pb, pe = window(case["in_sizes"], k, s, dl, case["pads"], case["auto_pad"], case["ceil_mode"])
    reach = [max(pe[d], (out[d] - 1) * s[d] + (k[d] - 1) * dl[d] + 1 - case["in_sizes"][d] - pb[d]) for d in range(nsp)]
    xt = t64(x, True)
    if case["kind"] == "max":
        y = MAX_POOL[nsp](F.pad(xt, torch_pads(pb, reach), value=-np.inf), k, s, dilation=dl)
    else:
        mask = torch.ones_like(xt)
        if case["count_include_pad"]:
            mask = F.pad(mask, torch_pads(pb, pe), value=1.0)
            mask = F.pad(mask, torch_pads([0] * nsp, [r - p for r, p in zip(reach, pe)]))
        else:
            mask = F.pad(mask, torch_pads(pb, reach))
        y = sum_pool(F.pad(xt, torch_pads(pb, reach)), k, s, dl) / sum_pool(mask, k, s, dl)
    assert list(y.shape[2:]) == out, (list(y.shape), out)
    y.backward(t64(dy))
    return xt.grad.numpy()


def native_pool_reference(case, x, dy):
    """dX from PyTorch's own pooling where it takes the case (symmetric pads of at
    most half the kernel, no auto_pad, no dilation for AveragePool); else None."""
    nsp = len(case["in_sizes"])
    pads = case["pads"]
    if case["auto_pad"] != "NOTSET" or pads[:nsp] != pads[nsp:] or any(2 * p > k for p, k in zip(pads, case["kernel"])):
        return None
    xt = t64(x, True)
    if case["kind"] == "max":
        y = MAX_POOL[nsp](xt, case["kernel"], case["strides"], pads[:nsp], dilation=case["dilations"],
                          ceil_mode=bool(case["ceil_mode"]))
    elif any(d != 1 for d in case["dilations"]):
        return None
    else:
        y = AVG_POOL[nsp](xt, case["kernel"], case["strides"], pads[:nsp], ceil_mode=bool(case["ceil_mode"]),
                          count_include_pad=bool(case["count_include_pad"]))
    y.backward(t64(dy))
    return xt.grad.numpy()


def test_pool(case, dynamic_shape=False):
    x_shape = [case["n"], case["c"]] + case["in_sizes"]
    out, pb, _ = window(case["in_sizes"], case["kernel"], case["strides"], case["dilations"], case["pads"],
                        case["auto_pad"], case["ceil_mode"])
    if not windows_touch_input(case, out, pb):
        return False
    if case["ties"]:
        x = RNG.integers(0, 3, size=x_shape).astype(np.float32)  # many equal maxima
    else:
        x = randn(*x_shape)
    dy = randn(case["n"], case["c"], *out)
    attrs = dict(kernel_shape=case["kernel"], strides=case["strides"], dilations=case["dilations"],
                 ceil_mode=case["ceil_mode"])
    if case["auto_pad"] == "NOTSET":
        attrs["pads"] = case["pads"]
    else:
        attrs["auto_pad"] = case["auto_pad"]
    pads = case["auto_pad"] if case["auto_pad"] != "NOTSET" else f"pads={case['pads']}"
    title = (f"{'x'.join(map(str, x_shape))} k={case['kernel']} s={case['strides']} d={case['dilations']} {pads} "
             f"ceil_mode={case['ceil_mode']}")
    if case["kind"] == "max":
        op, inputs = "MaxPoolGrad", [dy, x]
        title = f"MaxPoolGrad {title}{' ties' if case['ties'] else ''}"
    else:
        attrs["count_include_pad"] = case["count_include_pad"]
        op, inputs = "AveragePoolGrad", [dy, shape64(x_shape) if dynamic_shape else Const(shape64(x_shape))]
        title = (f"AveragePoolGrad {title} count_include_pad={case['count_include_pad']}"
                 f"{' (x_shape known only when running)' if dynamic_shape else ''}")
    ref = pool_reference(case, x, dy)
    native = native_pool_reference(case, x, dy)
    if native is not None:
        # The construction above and PyTorch's own op agree, so graft is checked against PyTorch's semantics.
        agree = float(np.max(np.abs(ref - native))) <= 1e-12 * max(1.0, float(np.max(np.abs(native))))
        report(f"{title} [torch's own pool agrees]", agree)
    check(title, op, inputs, ref, attrs)
    return True


def test_global_average(x_shape, dynamic_shape=False):
    x = randn(*x_shape)
    xt = t64(x, True)
    y = xt.mean(dim=tuple(range(2, len(x_shape))), keepdim=True)
    dy = randn(*y.shape)
    y.backward(t64(dy))
    shape_in = shape64(x_shape) if dynamic_shape else Const(shape64(x_shape))
    title = f"GlobalAveragePoolGrad {'x'.join(map(str, x_shape))}{' (x_shape known only when running)' if dynamic_shape else ''}"
    check(title, "GlobalAveragePoolGrad", [dy, shape_in], xt.grad.numpy(), {})


# ---- bad inputs ----

def test_errors():
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    w, dy = randn(8, 4, 3, 3), randn(2, 8, 6, 6)
    expect_error("ConvGradInput: x_shape of the wrong rank", "ConvGradInput", [dy, w, Const(shape64([2, 4, 6]))],
                 attrs, ["W has rank 4 but X (x_shape) has rank 3"])
    expect_error("ConvGradInput: x_shape not 1-D", "ConvGradInput", [dy, w, Const(shape64([[2, 4, 6, 6]]))], attrs,
                 ["x_shape must be a 1-D shape tensor"])
    expect_error("ConvGradInput: channel mismatch", "ConvGradInput", [dy, w, Const(shape64([2, 5, 6, 6]))], attrs,
                 ["X (x_shape) has 5 channels", "W's dim 1 must be 5, is 4"])
    expect_error("ConvGradInput: dY of the wrong spatial size", "ConvGradInput",
                 [randn(2, 8, 5, 6), w, Const(shape64([2, 4, 6, 6]))], attrs,
                 ["dY is [2,8,5,6]", "outputs [2,8,6,6]"])
    expect_error("ConvGradInput: dY of the wrong channel count", "ConvGradInput",
                 [randn(2, 7, 6, 6), w, Const(shape64([2, 4, 6, 6]))], attrs, ["dY is [2,7,6,6]", "outputs [2,8,6,6]"])
    expect_error("ConvGradInput: group does not divide", "ConvGradInput", [dy, w, Const(shape64([2, 4, 6, 6]))],
                 dict(attrs, group=3), ["group 3 does not divide the 4 channels of X (x_shape)"])
    expect_error("ConvGradInput: kernel_shape disagrees with W", "ConvGradInput", [dy, w, Const(shape64([2, 4, 6, 6]))],
                 dict(attrs, kernel_shape=[3, 2]), ["kernel_shape[1] = 2 but W's kernel is 3"])
    x = randn(2, 4, 6, 6)
    expect_error("ConvGradWeight: dY of the wrong spatial size", "ConvGradWeight",
                 [randn(2, 8, 3, 3), x, Const(shape64([8, 4, 3, 3]))], dict(attrs, strides=[1, 1]),
                 ["dY is [2,8,3,3], but the Conv of X with W (w_shape) outputs [2,8,6,6]"])
    expect_error("ConvGradWeight: w_shape of the wrong rank", "ConvGradWeight", [dy, x, Const(shape64([8, 4, 3]))],
                 dict(pads=[1, 1, 1, 1]), ["W (w_shape) has rank 3 but X has rank 4"])
    expect_error("ConvGradWeight: channel mismatch", "ConvGradWeight", [dy, x, Const(shape64([8, 2, 3, 3]))], attrs,
                 ["X has 4 channels in 1 groups, so W (w_shape)'s dim 1 must be 4, is 2"])
    expect_error("ConvGradWeight: negative w_shape", "ConvGradWeight", [dy, x, Const(shape64([8, -4, 3, 3]))], attrs,
                 ["w_shape[1] is negative"])
    expect_error("ConvGradWeight: dY of another type", "ConvGradWeight",
                 [dy.astype(np.float64), x, Const(shape64([8, 4, 3, 3]))], attrs, ["input 0 has element type float64"])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    expect_error("MaxPoolGrad: dY of the wrong spatial size", "MaxPoolGrad", [randn(2, 4, 3, 2), x], pool,
                 ["dY is [2,4,3,2], but pooling X outputs [2,4,3,3]"])
    expect_error("MaxPoolGrad: no kernel_shape", "MaxPoolGrad", [randn(2, 4, 3, 3), x], {}, ["kernel_shape is required"])
    expect_error("AveragePoolGrad: x_shape of the wrong rank", "AveragePoolGrad",
                 [randn(2, 4, 3, 3), Const(shape64([2, 4, 6]))], pool, ["kernel_shape has 2 values, X has 1 spatial dims"])
    expect_error("AveragePoolGrad: dY of the wrong channel count", "AveragePoolGrad",
                 [randn(2, 3, 3, 3), Const(shape64([2, 4, 6, 6]))], pool,
                 ["dY is [2,3,3,3], but pooling X (x_shape) outputs [2,4,3,3]"])
    expect_error("AveragePoolGrad: a window of only padding", "AveragePoolGrad",
                 [randn(2, 4, 4, 4), Const(shape64([2, 4, 6, 6]))], dict(pool, pads=[0, 0, 2, 2]),
                 ["covers only padding"])
    expect_error("GlobalAveragePoolGrad: dY not pooled", "GlobalAveragePoolGrad",
                 [randn(2, 4, 6, 6), Const(shape64([2, 4, 6, 6]))], {}, ["dY is [2,4,6,6], but pooling X (x_shape) outputs [2,4,1,1]"])
    expect_error("GlobalAveragePoolGrad: x_shape of rank 2", "GlobalAveragePoolGrad",
                 [randn(2, 4), Const(shape64([2, 4]))], {}, ["X (x_shape) has rank 2, expected N x C x spatial dims"])


def main():
    for nsp in (1, 2, 3):
        for group_kind in ("plain", "grouped", "depthwise"):
            for _ in range({1: 5, 2: 8, 3: 3}[nsp]):
                test_conv(random_conv_case(nsp, group_kind))
    # Shapes ResNets train with, and one whose x_shape is known only when running.
    for kernel, stride, pad, c, m, hw in ((3, 1, 1, 16, 16, 14), (3, 2, 1, 16, 32, 14), (1, 2, 0, 16, 32, 14),
                                          (7, 2, 3, 3, 8, 32), (1, 1, 0, 32, 8, 7)):
        case = dict(n=2, c=c, m=m, group=1, kernel=[kernel] * 2, strides=[stride] * 2, dilations=[1, 1],
                    pads=[pad] * 4, auto_pad="NOTSET", in_sizes=[hw, hw])
        test_conv(case)
    test_conv(random_conv_case(2, "grouped"), dynamic_shape=True)
    for nsp in (1, 2, 3):
        for _ in range(4):
            test_conv_transpose_weight(nsp)
    for kind in ("max", "average"):
        for nsp in (1, 2, 3):
            done = 0
            while done < {1: 8, 2: 14, 3: 5}[nsp]:
                done += test_pool(random_pool_case(nsp, kind))
    test_pool(dict(kind="average", n=2, c=3, kernel=[3, 3], strides=[2, 2], dilations=[1, 1], pads=[1, 1, 1, 1],
                   auto_pad="NOTSET", in_sizes=[8, 9], ceil_mode=1, count_include_pad=1, ties=False), dynamic_shape=True)
    for x_shape in ([2, 3, 7], [2, 5, 4, 6], [1, 3, 2, 3, 4], [3, 64, 7, 7]):
        test_global_average(x_shape)
    test_global_average([2, 3, 5, 5], dynamic_shape=True)
    test_errors()
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
