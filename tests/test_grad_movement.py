"""Gradient ops of data movement (domain ai.graft): ReduceSumTo, ConcatGrad,
SliceGrad and ResizeGrad, each a one-node model run with `graft run`, against
numpy and PyTorch autograd (float64), and ResizeGrad against graft's own Resize
and Upsample by the adjoint identity <Resize(x), dy> == <x, ResizeGrad(dy)>.
Also Pad with negative pads (cropping), which is how the trainer takes Pad's
gradient, and the errors bad inputs give.

Tolerances: sums and interpolation weights run in double and round once to
float32, so |graft - ref| <= 1e-5 * max|ref| (+1e-6 when ref is all zeros);
pure data movement (ConcatGrad, SliceGrad, nearest gathers of one element) must
match exactly or to the same bound; the adjoint identity holds to 1e-5 of
sum|y * dy|.

usage: test_grad_movement.py GRAFT_BINARY
"""
import itertools
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
TMP = tempfile.mkdtemp(prefix="graft-grad-movement-")
RNG = np.random.default_rng(7)
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
REL = 1e-5
results = {"passed": 0, "failed": 0}


class Const:
    """An input given as an initializer, so the session sees its values when it plans."""

    def __init__(self, value):
        self.value = value


def run_node(op, inputs, n_outputs=1, domain="ai.graft", opset=17, omit=(), **attrs):
    """Runs one node. inputs: list of numpy arrays (graph inputs), Const (initializers)
    or None (omitted); outputs whose index is in `omit` get no name. Returns (the
    outputs produced, None) or (None, stderr)."""
    graph_inputs, inits, names, feeds = [], [], [], []
    for i, v in enumerate(inputs):
        if v is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        arr = v.value if isinstance(v, Const) else v
        if isinstance(v, Const):
            inits.append(numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype], arr.shape))
            feeds.append((name, arr))
    outs = ["" if i in omit else f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op, names, outs, name="node", domain=domain, **attrs)
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs if o], inits)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("ai.graft", 1)] if domain == "ai.graft" else [])
    model = helper.make_model(graph, opset_imports=opsets)
    run_node.count = getattr(run_node, "count", 0) + 1
    base = os.path.join(TMP, f"m{run_node.count}")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    args = [GRAFT, "run", os.path.join(base, "model.onnx")]
    for name, arr in feeds:
        path = os.path.join(base, name + ".pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(arr, name).SerializeToString())
        args += ["--input", path]
    args += ["--output-dir", base]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or "runtime error" in proc.stderr or "Sanitizer" in proc.stderr:
        return None, proc.stderr.strip()
    got = [numpy_helper.to_array(onnx.load_tensor(os.path.join(base, f"output_{i}.pb")))
           for i in range(len([o for o in outs if o]))]
    return got, None


def report(title, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}")


def compare(title, got, ref, exact=False):
    ref = np.asarray(ref, dtype=np.float64)
    if got is None or got.shape != ref.shape:
        report(title, False, f"shape {None if got is None else got.shape}, expected {ref.shape}")
        return
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    bound = 0.0 if exact else REL * (float(np.max(np.abs(ref))) if ref.size else 0.0) + 1e-6
    report(title, err <= bound, f"max err {err:.2e} (bound {bound:.2e})")


def run_and_compare(title, op, inputs, ref, n_outputs=1, exact=False, **attrs):
    got, err = run_node(op, inputs, n_outputs, **attrs)
    if err:
        report(title, False, err)
        return
    refs = ref if isinstance(ref, list) else [ref]
    for i, (g, r) in enumerate(zip(got, refs)):
        compare(f"{title} [output {i}]" if len(refs) > 1 else title, g, r, exact)


def expect_error(title, op, inputs, needle, n_outputs=1, **attrs):
    got, err = run_node(op, inputs, n_outputs, **attrs)
    ok = err is not None and needle in err and "Sanitizer" not in err and "runtime error" not in err
    report(title, ok, (err or "no error").splitlines()[0][:220] if ok else f"wanted '{needle}', got: {err}")


def shape64(s):
    return np.array(s, dtype=np.int64)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---- ReduceSumTo ----

def reduce_sum_to_ref(x, shape):
    lead = x.ndim - len(shape)
    axes = tuple(d for d in range(x.ndim) if d < lead or (shape[d - lead] == 1 and x.shape[d] != 1))
    return x.astype(np.float64).sum(axis=axes, keepdims=True).reshape(shape)


def test_reduce_sum_to():
    cases = [
        ([2, 3, 4, 5], [2, 3, 4, 5]),       # no reduction: a copy
        ([4, 6, 5, 7], [6, 1, 1]),          # conv bias, lower rank
        ([4, 6, 5, 7], [1, 6, 1, 1]),       # conv bias, same rank
        ([8, 10], [10]),                    # Gemm bias
        ([64, 300], [1, 300]),
        ([2, 3, 4, 5], []),                 # to a scalar
        ([2, 3, 4, 5], [1]),
        ([2, 3, 4, 5], [1, 1, 4, 5]),       # innermost axes kept
        ([2, 3, 4, 5], [2, 1, 4, 1]),       # alternating
        ([2, 3, 4, 5], [2, 1, 1, 5]),
        ([2, 3, 4, 5], [3, 1, 5]),
        ([1, 1, 3], [3]),                   # size-1 axes of X
        ([6, 1, 7], [1, 1, 7]),
        ([6, 1, 7], [6, 1, 1]),
        ([5], [1]),
        ([], []),                           # scalar copy
        ([0, 3], [1, 3]),                   # empty X: zeros
        ([3, 0], [3, 0]),
        ([16, 32, 64, 64], [32, 1, 1]),     # summed runs split into blocks
        ([512, 64, 64], [1, 1, 64]),        # kept rows summed in blocks
        ([3, 1000], [3, 1]),
        ([2, 300, 600], [300, 1]),          # kept row split into pieces
    ]
    for xs, ys in cases:
        x = randn(*xs)
        run_and_compare(f"ReduceSumTo {xs} -> {ys}", "ReduceSumTo", [x, Const(shape64(ys))], reduce_sum_to_ref(x, ys))
    x = randn(3, 4, 5)
    run_and_compare("ReduceSumTo [3, 4, 5] -> [4, 1] (shape known only when running)", "ReduceSumTo",
                    [x, shape64([4, 1])], reduce_sum_to_ref(x, [4, 1]))
    expect_error("ReduceSumTo: shape that does not broadcast", "ReduceSumTo", [randn(2, 3), Const(shape64([2]))],
                 "does not broadcast")
    expect_error("ReduceSumTo: shape of higher rank", "ReduceSumTo", [randn(2, 3), Const(shape64([1, 2, 3]))],
                 "more axes than X")
    expect_error("ReduceSumTo: 2-D shape", "ReduceSumTo", [randn(2, 3), Const(shape64([[2, 3]]))], "must be a 1-D shape")
    expect_error("ReduceSumTo: negative dim", "ReduceSumTo", [randn(2, 3), Const(shape64([-1]))], "negative")
    expect_error("ReduceSumTo: int64 X", "ReduceSumTo", [np.zeros((2, 3), np.int64), Const(shape64([3]))],
                 "element type int64")


# ---- ConcatGrad ----

def test_concat_grad():
    cases = [
        ([4, 9, 5], 1, [2, 3, 4], None),
        ([4, 9, 5], -2, [9], None),
        ([6, 3], 0, [1, 0, 5], None),        # an empty piece
        ([2, 3, 10], 2, [3, 3, 4], [0, 2]),  # output 1 omitted
        ([2, 3, 10], -1, [5, 5, 0], [0]),    # trailing outputs left off
    ]
    for dys, axis, extents, present in cases:
        dy = randn(*dys)
        a = axis % len(dys)
        shapes = [Const(shape64([e if d == a else dys[d] for d in range(len(dys))])) for e in extents]
        refs = np.split(dy, np.cumsum(extents)[:-1], axis=a)
        n_out = len(extents) if present is None else max(present) + 1
        keep = range(n_out) if present is None else present
        got, err = run_node("ConcatGrad", [dy] + shapes, n_out, omit=set(range(n_out)) - set(keep), axis=axis)
        title = f"ConcatGrad {dys} axis {axis} into {extents}" + (f" (outputs {present})" if present else "")
        if err:
            report(title, False, err)
            continue
        for g, i in zip(got, keep):
            compare(f"{title} [piece {i}]", g, refs[i], exact=True)
    dy = randn(2, 6)
    expect_error("ConcatGrad: pieces do not add up", "ConcatGrad", [dy, Const(shape64([2, 2])), Const(shape64([2, 3]))],
                 "add up to 5", 2, axis=1)
    expect_error("ConcatGrad: piece differs off the axis", "ConcatGrad",
                 [dy, Const(shape64([3, 2])), Const(shape64([2, 4]))], "may differ only on axis 1", 2, axis=1)
    expect_error("ConcatGrad: more outputs than shapes", "ConcatGrad", [dy, Const(shape64([2, 6]))], "outputs for 1 shapes",
                 2, axis=1)
    expect_error("ConcatGrad: axis out of range", "ConcatGrad", [dy, Const(shape64([2, 6]))], "out of range", axis=2)


# ---- SliceGrad ----

def onnx_slice_indices(dim, start, end, step):
    """The indices ONNX Slice (opset 13) takes along one axis, straight from the spec."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return list(range(start, end, step))
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return list(range(start, end, step)) if dim > 0 else []


def slice_index_lists(x_shape, starts, ends, axes, steps):
    idx = [list(range(d)) for d in x_shape]
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % len(x_shape)
        idx[a] = onnx_slice_indices(x_shape[a], s, e, st)
    return idx


def torch_slice_grad(x_shape, idx, dy):
    """Autograd of the slice written as one index_select per axis."""
    x = torch.zeros(x_shape, dtype=torch.float64, requires_grad=True)
    y = x
    for d, ind in enumerate(idx):
        y = y.index_select(d, torch.tensor(ind, dtype=torch.long))
    (g,) = torch.autograd.grad(y, x, torch.from_numpy(dy.astype(np.float64)), allow_unused=True)
    return g.numpy()


def test_slice_grad():
    cases = [
        ([5, 6, 7], [1], [4], [0], None),
        ([5, 6, 7], [0, 1], [5, -1], None, None),                          # negative end
        ([5, 6, 7], [0, 1, 2], [5, 6, 7], [0, 1, 2], [2, 3, 2]),           # steps
        ([5, 6, 7], [-1], [INT64_MIN], [1], [-1]),                         # full reverse
        ([5, 6, 7], [-2, 5], [-100, 0], [2, -3], [-2, -1]),                # negative steps, clamped end
        ([5, 6, 7], [-100], [100], [-1], None),                            # clamped both ends
        ([5, 6, 7], [2], [INT64_MAX], [-2], [1]),                          # INT64 max end
        ([5, 6, 7], [100], [-100], [0], [-1]),                             # start clamped to dim - 1
        ([5, 6, 7], [3], [1], [0], [1]),                                   # empty slice
        ([5, 6, 7], [-1], [INT64_MIN], [2], [INT64_MIN]),                  # one element
        ([4, 5, 6, 7], [1, 0, 5, -1], [3, 5, 0, 0], [3, 2, 1, 0], [1, 2, -2, -1]),
        ([8], [1], [7], [0], [3]),
        ([3, 4], [], [], None, None),                                      # nothing sliced
    ]
    for xs, starts, ends, axes, steps in cases:
        idx = slice_index_lists(xs, starts, ends, axes, steps)
        dy = randn(*[len(i) for i in idx])
        ins = [dy, Const(shape64(xs)), Const(shape64(starts)), Const(shape64(ends)),
               Const(shape64(axes)) if axes is not None else None, Const(shape64(steps)) if steps is not None else None]
        while ins[-1] is None:
            ins.pop()
        title = f"SliceGrad {xs} starts {starts} ends {ends} axes {axes} steps {steps}"
        run_and_compare(title, "SliceGrad", ins, torch_slice_grad(xs, idx, dy), exact=True)
        # The spec's indices above are what graft's own Slice takes.
        x = randn(*xs)
        fwd = [x] + ins[2:]
        run_and_compare(f"  Slice forward takes those indices", "Slice", fwd, x[np.ix_(*idx)] if idx else x,
                        domain="", exact=True)
    xs, starts, ends, axes, steps = [5, 6], [4, -1], [0, -7], [0, 1], [-1, -2]
    idx = slice_index_lists(xs, starts, ends, axes, steps)
    dy = randn(*[len(i) for i in idx])
    run_and_compare("SliceGrad with x_shape and bounds known only when running", "SliceGrad",
                    [dy, shape64(xs), shape64(starts), shape64(ends), shape64(axes), shape64(steps)],
                    torch_slice_grad(xs, idx, dy), exact=True)
    expect_error("SliceGrad: dY not the slice's shape", "SliceGrad",
                 [randn(2, 6), Const(shape64([5, 6])), Const(shape64([1])), Const(shape64([4]))], "but this slice")
    expect_error("SliceGrad: zero step", "SliceGrad",
                 [randn(3, 6), Const(shape64([5, 6])), Const(shape64([1])), Const(shape64([4])), Const(shape64([0])),
                  Const(shape64([0]))], "step on axis 0 is 0")
    expect_error("SliceGrad: axis sliced twice", "SliceGrad",
                 [randn(1, 6), Const(shape64([5, 6])), Const(shape64([1, 1])), Const(shape64([2, 2])),
                  Const(shape64([0, -2]))], "sliced twice")
    expect_error("SliceGrad: missing ends", "SliceGrad", [randn(3, 6), Const(shape64([5, 6])), Const(shape64([1]))],
                 "inputs")


# ---- ResizeGrad against PyTorch ----

def resize_grad_inputs(dy, x_shape, scales=None, sizes=None, roi=None):
    return [dy, Const(shape64(x_shape)), Const(np.array(roi, np.float32)) if roi is not None else None,
            Const(np.array(scales, np.float32)) if scales is not None else None,
            Const(shape64(sizes)) if sizes is not None else None]


def torch_interp_grad(x_shape, dy, **kw):
    x = torch.zeros(x_shape, dtype=torch.float64, requires_grad=True)
    y = F.interpolate(x, **kw)
    assert tuple(y.shape) == dy.shape, (y.shape, dy.shape)
    (g,) = torch.autograd.grad(y, x, torch.from_numpy(dy.astype(np.float64)))
    return g.numpy()


def test_resize_grad_vs_torch():
    torch_modes = {1: "linear", 2: "bilinear", 3: "trilinear"}
    spatial = {1: [7], 2: [5, 6], 3: [3, 4, 5]}
    for nsp, factor in itertools.product([1, 2, 3], [2.0, 1.5, 0.55]):
        x_shape = [2, 3] + spatial[nsp]
        out_sp = [int(np.floor(s * factor)) for s in spatial[nsp]]
        dy = randn(2, 3, *out_sp)
        scales = [1.0, 1.0] + [factor] * nsp
        sizes = [2, 3] + out_sp
        # nearest: torch's 'nearest' is asymmetric + floor; 'nearest-exact' is half_pixel rounded up.
        ref = torch_interp_grad(x_shape, dy, scale_factor=factor, mode="nearest")
        run_and_compare(f"ResizeGrad nearest asymmetric/floor {nsp}-D x{factor} vs torch nearest", "ResizeGrad",
                        resize_grad_inputs(dy, x_shape, scales=scales), ref, mode="nearest",
                        coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        ref = torch_interp_grad(x_shape, dy, scale_factor=factor, mode="nearest-exact")
        for coord, nearest in [("half_pixel", "round_prefer_ceil"), ("tf_half_pixel_for_nn", "floor")]:
            run_and_compare(f"ResizeGrad nearest {coord}/{nearest} {nsp}-D x{factor} vs torch nearest-exact",
                            "ResizeGrad", resize_grad_inputs(dy, x_shape, scales=scales), ref, mode="nearest",
                            coordinate_transformation_mode=coord, nearest_mode=nearest)
        # linear, align_corners=False: half_pixel, and pytorch_half_pixel (they agree while outputs are > 1 long).
        ref = torch_interp_grad(x_shape, dy, scale_factor=factor, mode=torch_modes[nsp], align_corners=False)
        for coord in ["half_pixel", "pytorch_half_pixel"]:
            run_and_compare(f"ResizeGrad linear {coord} {nsp}-D x{factor} vs torch align_corners=False", "ResizeGrad",
                            resize_grad_inputs(dy, x_shape, scales=scales), ref, mode="linear",
                            coordinate_transformation_mode=coord)
        # align_corners=True maps corners through the output's integer length: give sizes.
        ref = torch_interp_grad(x_shape, dy, size=out_sp, mode=torch_modes[nsp], align_corners=True)
        run_and_compare(f"ResizeGrad linear align_corners {nsp}-D to {out_sp} vs torch align_corners=True",
                        "ResizeGrad", resize_grad_inputs(dy, x_shape, sizes=sizes), ref, mode="linear",
                        coordinate_transformation_mode="align_corners")
    # A YOLO-sized nearest x2 upsample gradient and a big bilinear one.
    dy = randn(2, 64, 52, 52)
    run_and_compare("ResizeGrad nearest x2 [2,64,26,26] (YOLO upsample)", "ResizeGrad",
                    resize_grad_inputs(dy, [2, 64, 26, 26], scales=[1, 1, 2, 2]),
                    torch_interp_grad([2, 64, 26, 26], dy, scale_factor=2.0, mode="nearest"),
                    mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    dy = randn(2, 21, 64, 80)
    run_and_compare("ResizeGrad bilinear [2,21,8,10] to [64,80] (FCN head)", "ResizeGrad",
                    resize_grad_inputs(dy, [2, 21, 8, 10], sizes=[2, 21, 64, 80]),
                    torch_interp_grad([2, 21, 8, 10], dy, size=[64, 80], mode="bilinear", align_corners=False),
                    mode="linear", coordinate_transformation_mode="pytorch_half_pixel")


# ---- ResizeGrad: the adjoint of graft's Resize and Upsample ----

def adjoint_check(title, x, fwd_op, fwd_inputs, fwd_attrs, grad_inputs_for, grad_attrs, fwd_opset=17):
    """<F(x), dy> == <x, ResizeGrad(dy)> for graft's forward op F and a random dy."""
    got, err = run_node(fwd_op, [x] + fwd_inputs, domain="", opset=fwd_opset, **fwd_attrs)
    if err:
        report(title, False, "forward: " + err)
        return
    y = got[0].astype(np.float64)
    dy = randn(*y.shape)
    got, err = run_node("ResizeGrad", grad_inputs_for(dy), **grad_attrs)
    if err:
        report(title, False, "gradient: " + err)
        return
    dx = got[0]
    if dx.shape != x.shape:
        report(title, False, f"dX shape {dx.shape}, X {x.shape}")
        return
    lhs, rhs = float(np.sum(y * dy)), float(np.sum(x.astype(np.float64) * dx))
    scale = float(np.sum(np.abs(y * dy))) or 1.0
    report(title, abs(lhs - rhs) <= REL * scale, f"<Rx,dy> {lhs:.6g}, <x,R'dy> {rhs:.6g}, rel {abs(lhs - rhs) / scale:.1e}")


def upsample_as_resize_grad(mode):
    """How the trainer maps Upsample (opset 7-9) onto ResizeGrad."""
    attrs = dict(mode=mode, coordinate_transformation_mode="asymmetric")
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    return attrs


def test_resize_adjoint():
    geometries = [  # x shape, scales or None, sizes or None
        ([2, 3, 5, 6], [1, 1, 2, 2], None),
        ([2, 3, 5, 6], [1, 1, 1.5, 0.6], None),
        ([2, 3, 5, 6], None, [2, 3, 1, 13]),          # an output axis of length 1
        ([7], [2.5], None),
        ([2, 3, 4], None, [2, 5, 3]),                 # resizes a leading axis too
        ([1, 2, 3, 4, 5], [1, 1, 0.7, 1.8, 1.3], None),
        ([4, 4], [1, 1], None),                       # identity
    ]
    coords = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nearest",
              "tf_crop_and_resize"]
    modes = [("nearest", dict(nearest_mode=n)) for n in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]]
    modes += [("linear", dict(exclude_outside=e)) for e in [0, 1]]
    for (xs, scales, sizes), coord, (mode, extra) in itertools.product(geometries, coords, modes):
        x = randn(*xs)
        roi = None
        if coord == "tf_crop_and_resize":
            roi = [0.0] * len(xs) + [1.0] * len(xs)
            roi[-1], roi[len(xs) - 1], roi[-2] = 0.9, 0.2, 1.2  # crop in, and past the edge (extrapolated)
        fwd = [Const(np.array(roi, np.float32)) if roi else None,
               Const(np.array(scales, np.float32)) if scales else None, Const(shape64(sizes)) if sizes else None]
        while fwd[-1] is None:
            fwd.pop()
        title = f"Resize adjoint {mode} {coord} {extra} x{xs} {'scales ' + str(scales) if scales else 'sizes ' + str(sizes)}"
        attrs = dict(mode=mode, coordinate_transformation_mode=coord, **extra)
        adjoint_check(title, x, "Resize", fwd, attrs, lambda dy: resize_grad_inputs(dy, xs, scales, sizes, roi), attrs)
    for (xs, sc), mode, opset in itertools.product([([2, 3, 4, 5], [1, 1, 2, 2]), ([2, 3, 4, 5], [1, 1, 1.5, 3]),
                                                    ([6], [2.5])], ["nearest", "linear"], [7, 9]):
        fwd, fwd_attrs = ([], dict(mode=mode, scales=[float(v) for v in sc])) if opset == 7 else ([Const(np.array(sc, np.float32))], dict(mode=mode))
        adjoint_check(f"Upsample-{opset} {mode} x{sc} on {xs} as ResizeGrad asymmetric", randn(*xs), "Upsample", fwd,
                      fwd_attrs, lambda dy: resize_grad_inputs(dy, xs, scales=sc), upsample_as_resize_grad(mode),
                      fwd_opset=opset)


def test_resize_grad_errors():
    dy = randn(1, 1, 4, 4)
    x_shape = [1, 1, 2, 2]
    expect_error("ResizeGrad: cubic", "ResizeGrad", resize_grad_inputs(dy, x_shape, scales=[1, 1, 2, 2]),
                 "mode 'cubic' has no gradient", mode="cubic")
    expect_error("ResizeGrad: antialias", "ResizeGrad", resize_grad_inputs(dy, x_shape, scales=[1, 1, 2, 2]),
                 "antialias", mode="linear", antialias=1)
    expect_error("ResizeGrad: dY of another shape", "ResizeGrad", resize_grad_inputs(dy, x_shape, scales=[1, 1, 3, 2]),
                 "makes axis 2 6 long")
    expect_error("ResizeGrad: x_shape of another rank", "ResizeGrad", resize_grad_inputs(dy, [2, 2], scales=[2, 2]),
                 "x_shape has 2 dims, dY has rank 4")
    expect_error("ResizeGrad: both scales and sizes", "ResizeGrad",
                 resize_grad_inputs(dy, x_shape, scales=[1, 1, 2, 2], sizes=[1, 1, 4, 4]), "exactly one of scales and sizes")
    expect_error("ResizeGrad: neither scales nor sizes", "ResizeGrad", resize_grad_inputs(dy, x_shape),
                 "exactly one of scales and sizes")
    expect_error("ResizeGrad: unknown coordinate mode", "ResizeGrad", resize_grad_inputs(dy, x_shape, scales=[1, 1, 2, 2]),
                 "'sideways' is not supported", coordinate_transformation_mode="sideways")
    expect_error("ResizeGrad: scales of the wrong length", "ResizeGrad", resize_grad_inputs(dy, x_shape, scales=[2, 2]),
                 "scales needs 4 values")


# ---- Pad with negative pads: Pad's gradient is Pad with the pads negated ----

def test_pad_negative():
    x = randn(2, 3, 5, 6)
    pads = [0, 0, 1, -2, 0, 0, -1, 3]  # begins then ends: pad H at the start, crop it at the end, and so on
    ref = np.pad(x, [(0, 0), (0, 0), (1, 0), (0, 3)])[:, :, :, 2:]
    ref = ref[:, :, :-1, :]
    run_and_compare("Pad constant with negative pads crops", "Pad", [x, Const(shape64(pads))], ref, domain="", exact=True)
    for pads in [[0, 0, 1, 2, 0, 0, 3, 1], [0, 1, 0, 0, 0, 2, 2, 0], [0, 0, 2, 2, 0, 0, 2, 2]]:
        xt = torch.zeros(x.shape, dtype=torch.float64, requires_grad=True)
        n = len(x.shape)
        torch_pad = []
        for d in reversed(range(n)):
            torch_pad += [pads[d], pads[d + n]]
        y = F.pad(xt, torch_pad)
        dy = randn(*y.shape)
        (g,) = torch.autograd.grad(y, xt, torch.from_numpy(dy.astype(np.float64)))
        run_and_compare(f"Pad with pads {[-p for p in pads]} is the gradient of Pad {pads}", "Pad",
                        [dy, Const(shape64([-p for p in pads]))], g.numpy(), domain="", exact=True)


def main():
    test_reduce_sum_to()
    test_concat_grad()
    test_slice_grad()
    test_resize_grad_vs_torch()
    test_resize_adjoint()
    test_resize_grad_errors()
    test_pad_negative()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
