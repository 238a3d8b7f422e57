#!/usr/bin/python3
"""Gradient checks of every gradient rule: for each op and attribute variant, a
one-node model on small random initializers, its outputs contracted with fixed
random weights into a scalar, checked by tests/gradcheck.c against central
finite differences.

    test_gradcheck.py GRADCHECK_EXE

Inputs that meet a kink (ReLU at 0, ties in a max pool) would make finite
differences meaningless, so such inputs are drawn away from them.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(20261122)


def rand(*shape, away_from_zero=False):
    x = RNG.uniform(-1, 1, size=shape).astype(np.float32)
    if away_from_zero:
        x = np.where(np.abs(x) < 0.1, np.sign(x + 1e-9) * 0.1 + x, x).astype(np.float32)
    return x


def distinct(*shape):
    """Values with gaps of at least 0.05 between any two, in random order: no ties in a max."""
    n = int(np.prod(shape))
    return (RNG.permutation(n).astype(np.float32) * 0.05 - n * 0.025).reshape(shape)


def build(op, inputs, out_shapes, attrs=None, opset=17):
    """op over initializers `inputs` ((name, array) pairs; None for an omitted input), each
    float output (its shape in out_shapes; None: left unused) weighted by a fixed random
    array and everything summed into the scalar output 'loss'."""
    names, inits = [], []
    for name, value in inputs:
        names.append(name if value is not None else "")
        if value is not None:
            inits.append(numpy_helper.from_array(np.asarray(value), name))
    outs = [f"y{k}" for k in range(len(out_shapes))]
    nodes = [helper.make_node(op, names, outs, **(attrs or {}))]
    terms = []
    for k, shape in enumerate(out_shapes):
        if shape is None:
            continue
        inits.append(numpy_helper.from_array(rand(*shape), f"w{k}"))
        nodes.append(helper.make_node("Mul", [outs[k], f"w{k}"], [f"m{k}"]))
        nodes.append(helper.make_node("ReduceSum", [f"m{k}"], [f"s{k}"], keepdims=0))
        terms.append(f"s{k}")
    nodes.append(helper.make_node("Sum", terms, ["loss"]))
    graph = helper.make_graph(nodes, op, [], [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def conv_out(n, k, s=1, p0=0, p1=0, d=1):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def cases():
    c = []
    # ---- convolution ----
    for name, x, w, attrs in [
        ("conv3x3", (2, 3, 7, 6), (4, 3, 3, 3), dict(pads=[1, 1, 1, 1])),
        ("conv_stride2_asym", (1, 2, 8, 7), (3, 2, 3, 2), dict(strides=[2, 2], pads=[1, 0, 0, 1])),
        ("conv_dilated", (1, 2, 9, 9), (2, 2, 3, 3), dict(dilations=[2, 2], pads=[2, 2, 2, 2])),
        ("conv_group2", (2, 4, 5, 5), (6, 2, 3, 3), dict(group=2, pads=[1, 1, 1, 1])),
        ("conv_depthwise", (1, 3, 6, 6), (3, 1, 3, 3), dict(group=3, strides=[2, 2], pads=[1, 1, 1, 1])),
        ("conv1d", (2, 3, 9), (2, 3, 4), dict(strides=[2], pads=[1, 2])),
        ("conv3d", (1, 2, 4, 5, 4), (2, 2, 2, 3, 2), dict(pads=[0, 1, 0, 1, 0, 1])),
        ("conv_same_upper", (1, 2, 7, 7), (2, 2, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    ]:
        for bias in (False, True):
            sp = x[2:]
            k = w[2:]
            pads = attrs.get("pads", [0] * (2 * len(sp)))
            strides = attrs.get("strides", [1] * len(sp))
            dil = attrs.get("dilations", [1] * len(sp))
            if attrs.get("auto_pad") == "SAME_UPPER":
                out = [-(-sp[i] // strides[i]) for i in range(len(sp))]
            else:
                out = [conv_out(sp[i], k[i], strides[i], pads[i], pads[i + len(sp)], dil[i]) for i in range(len(sp))]
            ins = [("x", rand(*x)), ("w", rand(*w))] + ([("b", rand(w[0]))] if bias else [])
            c.append((name + ("_bias" if bias else ""), "Conv", ins, [(x[0], w[0], *out)], attrs, 17))
    for name, x, w, attrs, out in [
        ("convT_stride2", (1, 3, 4, 4), (3, 2, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1]), (1, 2, 7, 7)),
        ("convT_outpad", (2, 2, 3, 4), (2, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
         (2, 3, 6, 8)),
        ("convT_group", (1, 4, 3, 3), (4, 1, 4, 4), dict(group=2, strides=[2, 2], pads=[1, 1, 1, 1]), (1, 2, 6, 6)),
    ]:
        c.append((name, "ConvTranspose", [("x", rand(*x)), ("w", rand(*w)), ("b", rand(out[1]))], [out], attrs, 17))
    # ---- pooling ----
    for name, x, attrs, out in [
        ("maxpool_k3s2p1", (2, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), (2, 2, 4, 4)),
        ("maxpool_ceil", (1, 2, 6, 6), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), (1, 2, 3, 3)),
        ("maxpool_dilated", (1, 1, 7, 7), dict(kernel_shape=[2, 2], dilations=[2, 2]), (1, 1, 5, 5)),
        ("maxpool_1d", (2, 3, 9), dict(kernel_shape=[3], strides=[2]), (2, 3, 4)),
    ]:
        c.append((name, "MaxPool", [("x", distinct(*x))], [out], attrs, 17))
    for name, x, attrs, out in [
        ("avgpool_k3s2p1", (2, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), (2, 2, 4, 4)),
        ("avgpool_include_pad", (1, 2, 5, 5),
         dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), (1, 2, 3, 3)),
        ("avgpool_ceil", (1, 1, 6, 6), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), (1, 1, 3, 3)),
    ]:
        c.append((name, "AveragePool", [("x", rand(*x))], [out], attrs, 17))
    c.append(("global_avgpool", "GlobalAveragePool", [("x", rand(2, 3, 4, 5))], [(2, 3, 1, 1)], {}, 17))
    # ---- normalisation (training form: batch statistics) ----
    for shape in [(4, 3, 3, 3), (6, 4), (3, 2, 5)]:
        ch = shape[1]
        ins = [("x", rand(*shape) * 2 + 0.5), ("scale", rand(ch) + 1.5), ("bias", rand(ch)),
               ("mean", rand(ch)), ("var", np.abs(rand(ch)) + 0.5)]
        c.append((f"batchnorm_{len(shape)}d", "BatchNormalization", ins, [shape], dict(epsilon=1e-5), 15))
    # ---- activations ----
    c.append(("relu", "Relu", [("x", rand(3, 4, 5, away_from_zero=True))], [(3, 4, 5)], {}, 17))
    c.append(("leaky_relu", "LeakyRelu", [("x", rand(3, 7, away_from_zero=True))], [(3, 7)], dict(alpha=0.1), 17))
    c.append(("sigmoid", "Sigmoid", [("x", rand(4, 6) * 3)], [(4, 6)], {}, 17))
    for axis in (1, -1, 0):
        c.append((f"softmax_axis{axis}", "Softmax", [("x", rand(3, 4, 5) * 2)], [(3, 4, 5)], dict(axis=axis), 13))
        c.append((f"logsoftmax_axis{axis}", "LogSoftmax", [("x", rand(3, 4, 5) * 2)], [(3, 4, 5)], dict(axis=axis), 13))
    c.append(("softmax_legacy", "Softmax", [("x", rand(2, 3, 4))], [(2, 3, 4)], dict(axis=1), 11))
    c.append(("logsoftmax_legacy", "LogSoftmax", [("x", rand(2, 3, 4))], [(2, 3, 4)], dict(axis=1), 11))
    # ---- matrix products ----
    for ta in (0, 1):
        for tb in (0, 1):
            a = rand(3, 4) if not ta else rand(4, 3)
            b = rand(4, 5) if not tb else rand(5, 4)
            for cshape in [(5,), (3, 5), (1, 5), ()]:
                cc = rand(*cshape) if cshape else np.float32(RNG.uniform(-1, 1))
                c.append((f"gemm_tA{ta}_tB{tb}_C{len(cshape)}d{cshape[0] if cshape else ''}", "Gemm",
                          [("a", a), ("b", b), ("c", np.asarray(cc, np.float32))], [(3, 5)],
                          dict(transA=ta, transB=tb, alpha=0.7, beta=1.3), 17))
    c.append(("gemm_no_c", "Gemm", [("a", rand(2, 3)), ("b", rand(4, 3))], [(2, 4)], dict(transB=1), 17))
    c.append(("matmul_2d", "MatMul", [("a", rand(3, 4)), ("b", rand(4, 2))], [(3, 2)], {}, 17))
    c.append(("matmul_3d_2d", "MatMul", [("a", rand(2, 3, 4)), ("b", rand(4, 5))], [(2, 3, 5)], {}, 17))
    c.append(("matmul_broadcast", "MatMul", [("a", rand(2, 1, 3, 4)), ("b", rand(3, 4, 2))], [(2, 3, 3, 2)], {}, 17))
    # ---- element-wise with broadcasting ----
    for op in ("Add", "Sub", "Mul", "Div"):
        for sa, sb in [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1, 3, 1, 1), (2, 3, 2, 2))]:
            out = np.broadcast_shapes(sa, sb)
            b = rand(*sb) if op != "Div" else (np.abs(rand(*sb)) + 0.5) * np.sign(rand(*sb, away_from_zero=True))
            c.append((f"{op.lower()}_{len(sa)}d_{len(sb)}d_{'x'.join(map(str, sb))}", op,
                      [("a", rand(*sa)), ("b", b.astype(np.float32))], [out], {}, 17))
    c.append(("sum3", "Sum", [("a", rand(2, 3)), ("b", rand(3)), ("c", rand(2, 1))], [(2, 3)], {}, 17))
    # ---- data movement ----
    c.append(("identity", "Identity", [("x", rand(3, 4))], [(3, 4)], {}, 17))
    c.append(("flatten_axis1", "Flatten", [("x", rand(2, 3, 4))], [(2, 12)], dict(axis=1), 17))
    c.append(("flatten_axis2", "Flatten", [("x", rand(2, 3, 4))], [(6, 4)], dict(axis=2), 17))
    c.append(("reshape", "Reshape", [("x", rand(2, 3, 4)), ("shape", np.array([4, -1], np.int64))], [(4, 6)], {}, 17))
    c.append(("squeeze", "Squeeze", [("x", rand(2, 1, 4)), ("axes", np.array([1], np.int64))], [(2, 4)], {}, 17))
    c.append(("unsqueeze", "Unsqueeze", [("x", rand(2, 4)), ("axes", np.array([0, 2], np.int64))], [(1, 2, 1, 4)], {}, 17))
    c.append(("transpose_default", "Transpose", [("x", rand(2, 3, 4))], [(4, 3, 2)], {}, 17))
    c.append(("transpose_perm", "Transpose", [("x", rand(2, 3, 4, 5))], [(3, 5, 2, 4)], dict(perm=[1, 3, 0, 2]), 17))
    c.append(("concat_axis1", "Concat", [("a", rand(2, 3, 2)), ("b", rand(2, 1, 2)), ("c", rand(2, 2, 2))],
              [(2, 6, 2)], dict(axis=1), 17))
    c.append(("concat_axis_neg", "Concat", [("a", rand(2, 3)), ("b", rand(2, 4))], [(2, 7)], dict(axis=-1), 17))
    c.append(("split_equal", "Split", [("x", rand(2, 6)), ("split", np.array([2, 2, 2], np.int64))],
              [(2, 2), (2, 2), (2, 2)], dict(axis=1), 17))
    c.append(("split_sizes_unused", "Split", [("x", rand(5, 3)), ("split", np.array([1, 4], np.int64))],
              [(1, 3), None], dict(axis=0), 17))
    c.append(("slice_steps", "Slice", [("x", rand(6, 7)), ("starts", np.array([1, -1], np.int64)),
                                        ("ends", np.array([5, -8], np.int64)), ("axes", np.array([0, 1], np.int64)),
                                        ("steps", np.array([2, -2], np.int64))], [(2, 4)], {}, 17))
    c.append(("slice_clamp", "Slice", [("x", rand(3, 5)), ("starts", np.array([1], np.int64)),
                                        ("ends", np.array([100], np.int64))], [(2, 5)], {}, 17))
    c.append(("pad_constant", "Pad", [("x", rand(2, 3)), ("pads", np.array([1, 0, 2, 3], np.int64)),
                                       ("value", np.array(0.5, np.float32))], [(5, 6)], {}, 17))
    for mode, ctm, extra in [("nearest", "asymmetric", dict(nearest_mode="floor")),
                             ("nearest", "half_pixel", dict(nearest_mode="round_prefer_floor")),
                             ("linear", "half_pixel", {}), ("linear", "align_corners", {}),
                             ("linear", "asymmetric", {}), ("linear", "pytorch_half_pixel", {})]:
        c.append((f"resize_{mode}_{ctm}", "Resize", [("x", rand(1, 2, 3, 4)), ("roi", None),
                                                      ("scales", np.array([1, 1, 2, 1.5], np.float32))],
                  [(1, 2, 6, 6)], dict(mode=mode, coordinate_transformation_mode=ctm, **extra), 13))
    c.append(("resize_sizes_linear", "Resize", [("x", rand(1, 1, 4, 5)), ("roi", None), ("scales", None),
                                                ("sizes", np.array([1, 1, 7, 3], np.int64))],
              [(1, 1, 7, 3)], dict(mode="linear"), 13))
    c.append(("upsample_nearest", "Upsample", [("x", rand(1, 2, 3, 3)), ("scales", np.array([1, 1, 2, 2], np.float32))],
              [(1, 2, 6, 6)], dict(mode="nearest"), 9))
    c.append(("dropout_train", "Dropout", [("x", rand(4, 8)), ("ratio", np.array(0.3, np.float32))],
              [(4, 8)], {}, 13))
    return c


LOSS_CASES = [
    # (name, op, inputs, attrs): scalar losses, checked as they are
    ("cross_entropy", "CrossEntropyLoss",
     [("s", rand(4, 5) * 2), ("t", np.array([0, 3, 4, 1], np.int64))], {}),
    ("cross_entropy_smooth_weight", "CrossEntropyLoss",
     [("s", rand(4, 5) * 2), ("t", np.array([0, 3, 4, 1], np.int64)), ("w", np.abs(rand(5)) + 0.2)],
     dict(label_smoothing=0.1)),
    ("cross_entropy_2d_ignore", "CrossEntropyLoss",
     [("s", rand(2, 3, 2, 2)), ("t", np.array([[[0, 2], [1, 7]], [[7, 1], [2, 0]]], np.int64))],
     dict(ignore_index=7)),
    ("mse", "MSELoss", [("p", rand(3, 4)), ("t", rand(3, 4))], {}),
    ("l1", "L1Loss", [("p", rand(3, 4, away_from_zero=True)), ("t", np.zeros((3, 4), np.float32))], {}),
    ("bce_with_logits", "BCEWithLogitsLoss", [("p", rand(3, 4) * 3), ("t", RNG.uniform(0, 1, (3, 4)).astype(np.float32))],
     {}),
]


def loss_model(op, inputs, attrs):
    inits = [numpy_helper.from_array(v, n) for n, v in inputs]
    names = [n for n, _ in inputs]
    outs = ["loss", "log_prob"] if op == "CrossEntropyLoss" else ["loss"]
    node = helper.make_node(op, names, outs, domain="ai.graft", **attrs)
    graph = helper.make_graph([node], op, [], [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.graft", 1)],
                             ir_version=8)


def main():
    exe = sys.argv[1]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for name, op, inputs, out_shapes, attrs, opset in cases():
            jobs.append((name, build(op, inputs, out_shapes, attrs, opset)))
        for name, op, inputs, attrs in LOSS_CASES:
            jobs.append((name, loss_model(op, inputs, attrs)))
        for name, model in jobs:
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(model, path)
            r = subprocess.run([exe, path], capture_output=True, text=True)
            ok = r.returncode == 0
            passed += ok
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}")
            if not ok:
                print("    " + (r.stdout + r.stderr).strip().replace("\n", "\n    "))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
