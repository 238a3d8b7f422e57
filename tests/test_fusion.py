"""A session's rewrites (src/runtime/fuse.c: Conv fused with the BatchNormalization,
Add and Relu/LeakyRelu after it, blocked layouts between the kernels that take them,
in-place outputs) change nothing but rounding.

    test_fusion.py GRAFT_EXE MODELS_DIR

Each model runs through `graft run` with the rewrites off (GRAFT_NO_FUSION=1), on with
every convolution direct (GRAFT_CONV_ALGO=direct), and on with every inference 3x3
convolution that fits as Winograd's (GRAFT_CONV_ALGO=winograd; to 1e-4 of the largest
output). Left to itself a session runs as Winograd's only the convolutions whose
transformed weights fit its budget (as much again as the model's weights): checked by
the bits of a small graph's output with and without room. With direct
convolutions the outputs must be the same bits, except where a
BatchNormalization is folded into the weights (rounded once, into the weights, instead
of after every convolution): there to 1e-4 of the largest output, the tolerance of the
model tests against PyTorch (on ResNet50 folding moves the output by about 2e-5 of the
largest, as much as onnxruntime and PyTorch's own folded export differ from PyTorch).
Both are checked against onnxruntime to 1e-4. The graphs cover each pattern and the
cases where it must not apply: a fused-away value read elsewhere or a graph output,
channel counts that do not fill the blocks, a blocked value read by a kernel that takes
plain tensors (a Reorder), a broadcasting Add, a BatchNormalization with statistics
that are not constants, a Winograd convolution whose scratch memory lies in the arena
between live activations. Then the exported models,
and training steps (`graft train`), whose losses must agree bit for bit: training
graphs are rewritten to blocked layouts only, by kernels that keep the plain ones'
arithmetic.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

GRAFT = sys.argv[1] if len(sys.argv) > 1 else "graft"
MODELS = sys.argv[2] if len(sys.argv) > 2 else "models/onnx/generated"
failures = []
passes = 0
rng = np.random.default_rng(7)


def check(what, ok, detail=""):
    global passes
    print(f"{'ok  ' if ok else 'FAIL'} {what}{'  ' + detail if detail else ''}", flush=True)
    if ok:
        passes += 1
    else:
        failures.append(what)


def write_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def graft_run(model_path, inputs, tmp, tag, fused, algo=None):
    """fused: the rewrites on; algo: GRAFT_CONV_ALGO ("direct", "winograd"; None: the session's choice)."""
    env = dict(os.environ)
    env.pop("GRAFT_CONV_ALGO", None)
    if not fused:
        env["GRAFT_NO_FUSION"] = "1"
    if algo:
        env["GRAFT_CONV_ALGO"] = algo
    out_dir = os.path.join(tmp, tag + ("_fused" if fused else "_plain") + ("_" + algo if algo else ""))
    os.makedirs(out_dir, exist_ok=True)
    args = [GRAFT, "run", model_path, "--output-dir", out_dir]
    for i, (name, x) in enumerate(inputs):
        path = os.path.join(tmp, f"{tag}_in{i}.pb")
        write_pb(path, x, name)
        args += ["--input", path]
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode:
        return None, r.stderr.strip()
    outs = []
    for i in range(len(onnx.load(model_path, load_external_data=False).graph.output)):
        outs.append(numpy_helper.to_array(onnx.load_tensor(os.path.join(out_dir, f"output_{i}.pb"))))
    return outs, ""


def compare(tag, model_path, inputs, tmp, exact):
    fused, err = graft_run(model_path, inputs, tmp, tag, True, algo="winograd")
    direct, err2 = graft_run(model_path, inputs, tmp, tag, True, algo="direct")
    plain, err3 = graft_run(model_path, inputs, tmp, tag, False)
    if fused is None or direct is None or plain is None:
        check(f"{tag}: graft ran", False, err or err2 or err3)
        return
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    want = sess.run(None, dict(inputs))
    for k, (f, d, p, w) in enumerate(zip(fused, direct, plain, want)):
        scale = max(float(np.max(np.abs(w))), 1e-6)
        diff = float(np.max(np.abs(d.astype(np.float64) - p)))
        if exact:
            check(f"{tag} output {k}: the same bits with and without the rewrites (direct convolutions)",
                  np.array_equal(d, p), f"worst {diff:.3g}")
        else:
            check(f"{tag} output {k}: with and without the rewrites (direct convolutions) within 1e-4",
                  diff <= 1e-4 * scale, f"worst {diff / scale:.3g} of the largest")
        wdiff = float(np.max(np.abs(f.astype(np.float64) - p)))
        check(f"{tag} output {k}: with the rewrites and Winograd, against none, within 1e-4", wdiff <= 1e-4 * scale,
              f"worst {wdiff / scale:.3g} of the largest")
        for what, got in (("the rewrites", f), ("no rewrites", p)):
            ort_diff = float(np.max(np.abs(got.astype(np.float64) - w)))
            check(f"{tag} output {k}: {what} against onnxruntime within 1e-4", ort_diff <= 1e-4 * scale + 1e-6,
                  f"worst {ort_diff / scale:.3g} of the largest")


# ---------------------------------------------------------------- small graphs

def const(name, array):
    return numpy_helper.from_array(array.astype(np.float32), name)


def conv_init(name, m, c, k):
    return [const(name + ".w", rng.standard_normal((m, c, k, k)) * (1.0 / np.sqrt(c * k * k))),
            const(name + ".b", rng.standard_normal(m) * 0.1)]


def bn_init(name, c):
    return [const(name + ".scale", rng.uniform(0.5, 1.5, c)), const(name + ".bias", rng.uniform(-0.2, 0.2, c)),
            const(name + ".mean", rng.standard_normal(c) * 0.1), const(name + ".var", rng.uniform(0.5, 2.0, c))]


def conv(name, x, y, k=3, stride=1, bias=True):
    ins = [x, name + ".w"] + ([name + ".b"] if bias else [])
    return helper.make_node("Conv", ins, [y], name=name, kernel_shape=[k, k], pads=[k // 2] * 4,
                            strides=[stride, stride])


def bn(name, x, y):
    return helper.make_node("BatchNormalization", [x, name + ".scale", name + ".bias", name + ".mean", name + ".var"],
                            [y], name=name, epsilon=1e-5)


def save(tmp, tag, nodes, inits, inputs, outputs):
    graph = helper.make_graph(nodes, tag, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = os.path.join(tmp, tag + ".onnx")
    onnx.save(model, path)
    return path


def small_graphs(tmp):
    x = rng.standard_normal((2, 32, 12, 12)).astype(np.float32)

    # Conv -> BN -> Add(a residual Conv) -> Relu, then a pool and a plain consumer (Flatten).
    inits = conv_init("c1", 32, 32, 3) + bn_init("bn1", 32) + conv_init("c2", 32, 32, 1)
    nodes = [conv("c1", "x", "a"), bn("bn1", "a", "b"), conv("c2", "x", "r", k=1), helper.make_node("Add", ["b", "r"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"]), helper.make_node("GlobalAveragePool", ["y"], ["g"]),
             helper.make_node("Flatten", ["g"], ["out"])]
    compare("conv-bn-add-relu", save(tmp, "conv_bn_add_relu", nodes, inits, [("x", x.shape)], ["out", "y"]),
            [("x", x)], tmp, exact=False)

    # The same without the BN: bit for bit; the residual is also read later, and a Relu's
    # input dies there (in place).
    inits = conv_init("c1", 32, 32, 3) + conv_init("c2", 32, 32, 3)
    nodes = [conv("c1", "x", "a"), helper.make_node("Relu", ["a"], ["ra"]), conv("c2", "ra", "b"),
             helper.make_node("Add", ["b", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"]),
             helper.make_node("Mul", ["y", "x"], ["z"]), helper.make_node("MaxPool", ["z"], ["out"], kernel_shape=[3, 3],
                                                                          strides=[2, 2], pads=[1, 1, 1, 1])]
    compare("conv-add-relu, residual read again", save(tmp, "conv_add_relu", nodes, inits, [("x", x.shape)], ["out"]),
            [("x", x)], tmp, exact=True)

    # Channels that do not fill a block (24), LeakyRelu, and a conv output that is a graph
    # output (not fused away) and feeds a Reshape (plain: a Reorder before it).
    x24 = rng.standard_normal((1, 24, 10, 10)).astype(np.float32)
    inits = conv_init("c1", 24, 24, 3) + conv_init("c2", 32, 24, 3) + conv_init("c3", 32, 32, 3)
    nodes = [conv("c1", "x", "a"), helper.make_node("LeakyRelu", ["a"], ["la"], alpha=0.1), conv("c2", "la", "b"),
             helper.make_node("LeakyRelu", ["b"], ["lb"], alpha=0.1), conv("c3", "lb", "c"),
             helper.make_node("Reshape", ["c", "shape"], ["flat"])]
    inits.append(numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape"))
    compare("leaky relu, 24 channels, conv output kept, reshape",
            save(tmp, "leaky", nodes, inits, [("x", x24.shape)], ["flat", "c"]), [("x", x24)], tmp, exact=True)

    # LeakyRelu after convolutions that run as Winograd's (whole channel blocks), alone and
    # after a residual Add: oneDNN's Winograd kernels take no leaky slope, so graft applies it after.
    inits = conv_init("c1", 32, 32, 3) + conv_init("c2", 32, 32, 3)
    nodes = [conv("c1", "x", "a"), helper.make_node("LeakyRelu", ["a"], ["la"], alpha=0.1), conv("c2", "la", "b"),
             helper.make_node("Add", ["b", "x"], ["s"]), helper.make_node("LeakyRelu", ["s"], ["out"], alpha=0.1)]
    compare("leaky relu after Winograd convolutions", save(tmp, "leaky_wino", nodes, inits, [("x", x.shape)], ["out"]),
            [("x", x)], tmp, exact=True)

    # 256 channels on 24x24 maps: Winograd's scratch memory (18 MB) is large enough to be
    # placed in the session's arena beside the activations live at its step (the input
    # x, read again by the Add), not in oneDNN's own buffer.
    x256 = rng.standard_normal((1, 256, 24, 24)).astype(np.float32)
    inits = conv_init("c1", 256, 256, 3) + conv_init("c2", 256, 256, 3)
    nodes = [conv("c1", "x", "a"), helper.make_node("Relu", ["a"], ["ra"]), conv("c2", "ra", "b"),
             helper.make_node("Add", ["b", "x"], ["out"])]
    compare("Winograd with its scratch in the arena", save(tmp, "scratch", nodes, inits, [("x", x256.shape)], ["out"]),
            [("x", x256)], tmp, exact=True)

    # A conv output with two readers (no fusion), a broadcasting Add (plain), and a
    # BatchNormalization whose statistics are graph inputs (no folding).
    inits = conv_init("c1", 32, 32, 3) + conv_init("c2", 32, 32, 3) + [const("bias", rng.standard_normal((32, 1, 1)))]
    inits += [const("bn.scale", rng.uniform(0.5, 1.5, 32)), const("bn.bias", rng.uniform(-0.2, 0.2, 32))]
    mean = (rng.standard_normal(32) * 0.1).astype(np.float32)
    var = rng.uniform(0.5, 2.0, 32).astype(np.float32)
    nodes = [conv("c1", "x", "a"), helper.make_node("Relu", ["a"], ["ra"]), helper.make_node("Add", ["a", "bias"], ["ab"]),
             helper.make_node("Add", ["ra", "ab"], ["s"]), conv("c2", "s", "b"),
             helper.make_node("BatchNormalization", ["b", "bn.scale", "bn.bias", "mean", "var"], ["out"])]
    compare("two readers, broadcasting add, BN statistics not constant",
            save(tmp, "readers", nodes, inits, [("x", x.shape), ("mean", (32,)), ("var", (32,))], ["out"]),
            [("x", x), ("mean", mean), ("var", var)], tmp, exact=True)

    # Strided convs, ConvTranspose and AveragePool on blocked tensors, batch 3.
    x3 = rng.standard_normal((3, 16, 15, 15)).astype(np.float32)
    inits = conv_init("c1", 32, 16, 3) + [const("t.w", rng.standard_normal((32, 16, 4, 4)) * 0.1)]
    nodes = [conv("c1", "x", "a", stride=2), helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("AveragePool", ["ra"], ["p"], kernel_shape=[2, 2], strides=[1, 1]),
             helper.make_node("ConvTranspose", ["p", "t.w"], ["out"], strides=[2, 2], pads=[1, 1, 1, 1])]
    compare("strides, average pool, conv transpose", save(tmp, "strided", nodes, inits, [("x", x3.shape)], ["out"]),
            [("x", x3)], tmp, exact=True)


def winograd_budget(tmp):
    """One 32-channel 3x3 convolution: its transformed weights (4x) need 3x its weights more,
    which a model holding only it has no room for; a 295 KB MatMul weight beside it makes room."""
    x = rng.standard_normal((1, 32, 12, 12)).astype(np.float32)
    for room in (False, True):
        tag = "budget_room" if room else "budget_none"
        inits = conv_init("c1", 32, 32, 3)
        nodes = [conv("c1", "x", "out")]
        outputs = ["out"]
        if room:
            inits.append(const("big", rng.standard_normal((32 * 12 * 12, 16)) * 0.01))
            inits.append(numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape"))
            nodes += [helper.make_node("Reshape", ["out", "shape"], ["flat"]), helper.make_node("MatMul", ["flat", "big"], ["head"])]
            outputs.append("head")
        path = save(tmp, tag, nodes, inits, [("x", x.shape)], outputs)
        runs = {algo: graft_run(path, [("x", x)], tmp, tag, True, algo) for algo in (None, "direct", "winograd")}
        if any(out is None for out, _ in runs.values()):
            check(f"{tag}: graft ran", False, next(err for out, err in runs.values() if out is None))
            continue
        auto, direct, wino = (runs[a][0][0] for a in (None, "direct", "winograd"))
        check(f"{tag}: Winograd's output differs from the direct one in its bits (so the check below can tell)",
              not np.array_equal(wino, direct))
        want = wino if room else direct
        check(f"{tag}: the session's choice is {'Winograd' if room else 'direct'}", np.array_equal(auto, want))


# ---------------------------------------------------------------- exported models

def exported(tmp):
    for name, exact in (("resnet18", True), ("resnet18_bn", False), ("resnet50_bn", False), ("yolov3", True),
                        ("fcn8s", True)):
        path = os.path.join(MODELS, name, "model.onnx")
        if not os.path.exists(path):
            print(f"skip {name}: {path} is missing")
            continue
        x = numpy_helper.to_array(onnx.load_tensor(os.path.join(MODELS, name, "test_data_set_0", "input_0.pb")))
        model = onnx.load(path, load_external_data=False)
        compare(name, path, [(model.graph.input[0].name, x)], tmp, exact)


# ---------------------------------------------------------------- training

def training(tmp):
    for name, batch, side in (("resnet18_bn", 4, 32),):
        path = os.path.join(MODELS, name, "model.onnx")
        if not os.path.exists(path):
            print(f"skip training {name}: {path} is missing")
            continue
        x = rng.standard_normal((batch, 3, side, side)).astype(np.float32)
        y = rng.integers(0, 10, batch).astype(np.int64)
        xs, ys = os.path.join(tmp, "tx.pb"), os.path.join(tmp, "ty.pb")
        write_pb(xs, x, "input")
        write_pb(ys, y, "labels")
        logs = []
        for fused in (True, False):
            env = dict(os.environ)
            if not fused:
                env["GRAFT_NO_FUSION"] = "1"
            log = os.path.join(tmp, f"train_{fused}.csv")
            r = subprocess.run([GRAFT, "train", path, "--inputs", xs, "--labels", ys, "--replace-head", "10", "--steps",
                                "3", "--batch", str(batch), "--no-shuffle", "--optim", "sgd", "--lr", "0.05",
                                "--momentum", "0.9", "--log", log, "--quiet"], capture_output=True, text=True, env=env)
            if r.returncode:
                check(f"training {name}: graft train ran", False, r.stderr.strip())
                return
            with open(log) as f:
                logs.append([line.split(",")[2] for line in f.read().splitlines()[1:]])
        check(f"training {name}: the same losses with and without the rewrites", logs[0] == logs[1],
              f"{logs[0]} / {logs[1]}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        small_graphs(tmp)
        winograd_budget(tmp)
        exported(tmp)
        training(tmp)
    print(f"{passes} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
