#!/usr/bin/env python3
"""`graft train` on tensors: it learns, logs, exports a model onnxruntime runs the
same way, replaces heads, freezes what it is told, repeats itself exactly, and
refuses bad input with a message that says what is wrong.

    test_train_cli.py GRAFT_EXE SOURCE_ROOT
"""
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

GRAFT, ROOT = sys.argv[1], sys.argv[2]
TINY = os.path.join(ROOT, "models/onnx/tiny_cnn/tiny_cnn_bn/model.onnx")
failures, passes = [], 0


def check(what, ok, detail=""):
    global passes
    print(f"{'ok  ' if ok else 'FAIL'} {what}{'  ' + detail if detail and not ok else ''}", flush=True)
    if ok:
        passes += 1
    else:
        failures.append(what)


def write_pb(path, array, name="x"):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def graft(*args):
    return subprocess.run([GRAFT, *args], capture_output=True, text=True)


def initializers(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def dataset(tmp, n=64, classes=10, seed=0):
    """Images whose class sets which channel is bright in which quadrant: learnable."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int64)
    x = rng.standard_normal((n, 3, 12, 12)).astype(np.float32) * 0.5
    for i, c in enumerate(y):
        q = c % 4
        x[i, c % 3, (q // 2) * 6:(q // 2) * 6 + 6, (q % 2) * 6:(q % 2) * 6 + 6] += 2.0
    xs, ys = os.path.join(tmp, f"x{seed}.pb"), os.path.join(tmp, f"y{seed}.pb")
    write_pb(xs, x)
    write_pb(ys, y, "y")
    return xs, ys, x, y


def read_log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def learns_and_exports(tmp):
    xs, ys, x, _ = dataset(tmp)
    log, out = os.path.join(tmp, "log.csv"), os.path.join(tmp, "trained.onnx")
    r = graft("train", TINY, "--inputs", xs, "--labels", ys, "--steps", "60", "--batch", "16", "--optim", "sgd",
              "--lr", "0.05", "--momentum", "0.9", "--log", log, "--out", out, "--quiet")
    check("train tiny_cnn_bn 60 steps", r.returncode == 0, r.stderr)
    if r.returncode:
        return
    rows = read_log(log)
    check("log has a row per step with step, loss, lr", len(rows) == 60 and {"step", "loss", "lr"} <= set(rows[0]))
    first = np.mean([float(r["loss"]) for r in rows[:8]])
    last = np.mean([float(r["loss"]) for r in rows[-8:]])
    check("loss falls by half over 60 steps", last < 0.5 * first, f"first {first:.3f} last {last:.3f}")

    onnx.checker.check_model(onnx.load(out), full_check=True)
    check("the export passes onnx.checker with full check", True)
    before, after = initializers(TINY), initializers(out)
    check("initializer names are kept", set(before) == set(after))
    check("weights and running statistics changed",
          not np.array_equal(before["fc.weight"], after["fc.weight"])
          and not np.array_equal(before["features.1.running_mean"], after["features.1.running_mean"]))
    check("no training-only nodes in the export",
          all(n.domain in ("", "ai.onnx") for n in onnx.load(out).graph.node))
    sample = x[:5]
    ref = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"input": sample})[0]
    xin, odir = os.path.join(tmp, "sample.pb"), os.path.join(tmp, "run_out")
    write_pb(xin, sample, "input")
    r = graft("run", out, "--input", xin, "--output-dir", odir)
    ours = numpy_helper.to_array(onnx.load_tensor(os.path.join(odir, "output_0.pb"))) if r.returncode == 0 else None
    check("graft and onnxruntime agree on the trained model",
          ours is not None and np.max(np.abs(ours - ref)) <= 1e-4 * np.max(np.abs(ref)) + 1e-5, r.stderr)


def repeats_exactly(tmp):
    xs, ys, _, _ = dataset(tmp, n=40, seed=3)
    outs = []
    for k in range(2):
        out = os.path.join(tmp, f"again{k}.onnx")
        r = graft("train", TINY, "--inputs", xs, "--labels", ys, "--steps", "7", "--batch", "12", "--seed", "5",
                  "--optim", "adamw", "--out", out, "--quiet")
        outs.append(initializers(out) if r.returncode == 0 else None)
    check("two runs with the same seed give bit-identical weights",
          outs[0] is not None and outs[1] is not None and all(np.array_equal(outs[0][k], outs[1][k]) for k in outs[0]))


def resumes_exactly(tmp):
    """10 steps straight vs 4 steps, a checkpoint, and 6 more from it: the same bits.
    40 samples in batches of 12 put the checkpoint in the middle of an epoch."""
    xs, ys, _, _ = dataset(tmp, n=40, seed=4)
    common = ["--inputs", xs, "--labels", ys, "--batch", "12", "--seed", "9", "--optim", "adam", "--quiet"]
    straight, first, ck, resumed = (os.path.join(tmp, f) for f in ("straight.onnx", "first.onnx", "ck.onnx", "resumed.onnx"))
    r1 = graft("train", TINY, *common, "--steps", "10", "--out", straight)
    r2 = graft("train", TINY, *common, "--steps", "4", "--checkpoint", ck, "--out", first)
    r3 = graft("train", TINY, *common, "--steps", "10", "--resume", ck, "--out", resumed)
    ok = r1.returncode == r2.returncode == r3.returncode == 0
    check("train, checkpoint, resume", ok, r1.stderr + r2.stderr + r3.stderr)
    if not ok:
        return
    a, b = initializers(straight), initializers(resumed)
    check("resumed training gives bit-identical weights to training straight through",
          all(np.array_equal(a[k], b[k]) for k in a))
    meta = {p.key: p.value for p in onnx.load(ck).metadata_props}
    check("the checkpoint records the step and the optimizer", meta.get("graft.step") == "4"
          and meta.get("graft.optimizer") == "adam")
    y = ort.InferenceSession(ck, providers=["CPUExecutionProvider"]).run(None, {"input": np.zeros((1, 3, 12, 12), np.float32)})[0]
    check("onnxruntime runs a checkpoint as a model", y.shape == (1, 10))
    other = os.path.join(tmp, "other_ck.onnx")
    xs4, ys4, _, _ = dataset(tmp, n=40, classes=4, seed=6)
    graft("train", TINY, "--inputs", xs4, "--labels", ys4, "--steps", "1", "--replace-head", "4", "--optim", "adam", "--checkpoint", other)
    r = graft("train", TINY, *common, "--steps", "2", "--resume", other)
    check("a checkpoint of another model is refused, naming the difference",
          r.returncode == 1 and "another model" in r.stderr and "fc.weight" in r.stderr, r.stderr)
    r = graft("train", TINY, *common[:-3], "--optim", "sgd", "--quiet", "--steps", "6", "--resume", ck)
    check("a checkpoint of another optimizer is refused", r.returncode == 1 and "adam" in r.stderr, r.stderr)


def resumes_schedule_exactly(tmp):
    """A schedule's position and a late unfreezing survive a checkpoint too."""
    xs, ys, _, _ = dataset(tmp, n=40, seed=7)
    common = ["--inputs", xs, "--labels", ys, "--batch", "12", "--seed", "3", "--optim", "adam", "--quiet",
              "--sched", "onecycle:0.01:10", "--trainable", "fc.*", "--unfreeze-at", "6"]
    straight, ck, resumed = (os.path.join(tmp, f) for f in ("s_straight.onnx", "s_ck.onnx", "s_resumed.onnx"))
    log_straight, log_resumed = os.path.join(tmp, "s_straight.csv"), os.path.join(tmp, "s_resumed.csv")
    r1 = graft("train", TINY, *common, "--steps", "10", "--out", straight, "--log", log_straight)
    r2 = graft("train", TINY, *common, "--steps", "4", "--checkpoint", ck)
    r3 = graft("train", TINY, *common, "--steps", "10", "--resume", ck, "--out", resumed, "--log", log_resumed)
    ok = r1.returncode == r2.returncode == r3.returncode == 0
    check("train with a schedule and unfreezing, checkpoint, resume", ok, r1.stderr + r2.stderr + r3.stderr)
    if not ok:
        return
    a, b = initializers(straight), initializers(resumed)
    check("resumed with a schedule and unfreezing: bit-identical weights", all(np.array_equal(a[k], b[k]) for k in a))
    lrs = [row["lr"] for row in read_log(log_straight)]
    check("the resumed run's rates are the schedule's from step 5 on", [row["lr"] for row in read_log(log_resumed)] == lrs[4:])
    r = graft("train", TINY, *common[:-6], "--sched", "cosine:10", "--steps", "6", "--resume", ck)
    check("resuming under another schedule is refused", r.returncode == 1 and "onecycle:0.01:10" in r.stderr, r.stderr)


def finds_lr(tmp):
    xs, ys, _, _ = dataset(tmp, n=64, seed=8)
    log = os.path.join(tmp, "find_lr.csv")
    r = graft("train", TINY, "--inputs", xs, "--labels", ys, "--batch", "16", "--find-lr", "1e-5:10:40", "--json",
              "--log", log, "--quiet")
    check("--find-lr runs", r.returncode == 0, r.stderr)
    if r.returncode:
        return
    import json
    found = json.loads(r.stdout)
    rows = [line.split(",") for line in open(log).read().split()[1:]]
    lrs = np.array([float(row[1]) for row in rows])
    check("--find-lr ramps the rate exponentially from START to END",
          len(rows) >= 3 and np.allclose(lrs, 1e-5 * (1e6 ** (np.arange(len(lrs)) / 39)), rtol=1e-6))
    check("--find-lr suggests a rate inside the ramp", lrs[0] <= found["suggested_lr"] <= lrs[-1], r.stdout)


def replaces_head_and_freezes(tmp):
    xs, ys, _, _ = dataset(tmp, n=32, classes=4, seed=1)
    out = os.path.join(tmp, "head4.onnx")
    r = graft("train", TINY, "--inputs", xs, "--labels", ys, "--steps", "4", "--batch", "8", "--replace-head", "4",
              "--trainable", "fc.*", "--optim", "adam", "--out", out, "--quiet")
    check("--replace-head 4 --trainable 'fc.*' trains", r.returncode == 0, r.stderr)
    if r.returncode:
        return
    before, after = initializers(TINY), initializers(out)
    check("the new head has 4 outputs", after["fc.weight"].shape == (4, 16) and after["fc.bias"].shape == (4,))
    check("frozen convolutions are unchanged", np.array_equal(before["features.0.weight"], after["features.0.weight"])
          and np.array_equal(before["features.4.weight"], after["features.4.weight"]))
    y = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(
        None, {"input": np.zeros((2, 3, 12, 12), np.float32)})[0]
    check("onnxruntime runs the new head: output [2, 4]", y.shape == (2, 4))

    out = os.path.join(tmp, "freeze_before.onnx")
    xs, ys, _, _ = dataset(tmp)
    r = graft("train", TINY, "--inputs", xs, "--labels", ys, "--steps", "2", "--batch", "8",
              "--freeze-before", "/features/features.4/Conv", "--out", out, "--quiet")
    after = initializers(out) if r.returncode == 0 else None
    check("--freeze-before NODE freezes that node and what feeds it, trains the rest",
          after is not None and np.array_equal(before["features.0.weight"], after["features.0.weight"])
          and np.array_equal(before["features.4.weight"], after["features.4.weight"])
          and not np.array_equal(before["features.5.weight"], after["features.5.weight"]), r.stderr)


def refuses(what, args, expect, tmp):
    r = graft("train", *args)
    msg = r.stderr.strip()
    ok = r.returncode == 1 and all(e in msg for e in expect)
    check(f"refuses {what}", ok, f"rc {r.returncode}: {msg}")


def model_with_erf(tmp):
    """Conv -> Erf -> GlobalAveragePool -> Flatten -> Gemm: Erf has no gradient rule."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv.weight"),
             numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")]
    nodes = [helper.make_node("Conv", ["input", "conv.weight"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Erf", ["c"], ["e"], name="erf"),
             helper.make_node("GlobalAveragePool", ["e"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "erf", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 12, 12])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    path = os.path.join(tmp, "erf.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def bad_inputs(tmp):
    xs, ys, x, y = dataset(tmp)
    bad_y = y.copy()
    bad_y[3] = 12
    write_pb(os.path.join(tmp, "bad_y.pb"), bad_y, "y")
    refuses("a label outside the model's classes", ["--inputs", xs, "--labels", os.path.join(tmp, "bad_y.pb"), TINY],
            ["label 12", "10 classes", "--replace-head"], tmp)
    write_pb(os.path.join(tmp, "short_y.pb"), y[:-1], "y")
    refuses("inputs and labels of different lengths",
            [TINY, "--inputs", xs, "--labels", os.path.join(tmp, "short_y.pb")], ["64", "63"], tmp)
    refuses("freezing everything", [TINY, "--inputs", xs, "--labels", ys, "--trainable", "nothing*"],
            ["nothing to train"], tmp)
    nan_x = x.copy()
    nan_x[0, 0, 0, 0] = np.nan
    write_pb(os.path.join(tmp, "nan_x.pb"), nan_x)
    refuses("a loss that is not finite, naming the step and the first node",
            [TINY, "--inputs", os.path.join(tmp, "nan_x.pb"), "--labels", ys, "--no-shuffle", "--batch", "64"],
            ["step 1", "not finite", "/features/features.0/Conv"], tmp)
    erf = model_with_erf(tmp)
    refuses("training through an op without a gradient rule, naming it",
            [erf, "--inputs", xs, "--labels", ys], ["'erf' (Erf)", "no gradient rule"], tmp)
    r = graft("train", erf, "--inputs", xs, "--labels", ys, "--trainable", "fc.*", "--steps", "2", "--quiet")
    check("the same model trains when only what follows Erf trains", r.returncode == 0, r.stderr)
    r = graft("train", TINY, "--inputs", xs, "--labels", ys, "--optim", "lbfgs")
    check("an unknown optimizer is a usage error (exit 2)", r.returncode == 2 and "lbfgs" in r.stderr, r.stderr)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        learns_and_exports(tmp)
        repeats_exactly(tmp)
        resumes_exactly(tmp)
        resumes_schedule_exactly(tmp)
        finds_lr(tmp)
        replaces_head_and_freezes(tmp)
        bad_inputs(tmp)
    print(f"{passes} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
