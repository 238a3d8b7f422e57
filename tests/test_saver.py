"""The ONNX saver: load with graft, save, and check that the file means the same.

For the exported models (models/onnx/generated, or two exported now when none are
there), the committed tiny CNNs and a broad sample of the ONNX node tests that
graft loads, each model is round-tripped through `save_roundtrip` and then
  1. onnx.checker.check_model(full_check=True) passes on the saved file where it
     passes on the original;
  2. onnxruntime gives bit-identical outputs for both on test_data_set_0 (where it
     runs the original), and the graphs match anyway: nodes with their attributes,
     inputs, outputs, value_info, opsets, metadata;
  3. initializers keep their names, order, types, dims and bytes exactly.
Then the failure cases: a missing directory, an unwritable directory, a target the
rename cannot replace, a full disk (a 1 MiB tmpfs, when mount works), a model over
protobuf's 2 GiB limit, and extra initializers and metadata for checkpoints.

usage: test_saver.py SAVE_ROUNDTRIP SOURCE_ROOT
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROUNDTRIP = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
NODE_TESTS = "/usr/share/libonnx-testdata/data/node"
NODE_SAMPLE_STRIDE = 7          # every 7th of the 932 node tests: ~130 tried, ~100 load
SAVE_ERROR = "cannot save"      # how the saver's messages begin; anything else is the loader refusing

results = {"passed": 0, "failed": 0}


def report(ok, what, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'}: {what}{' - ' + detail if detail and not ok else ''}", flush=True)


def roundtrip(src, dst, *extra, user=None):
    cmd = [ROUNDTRIP, src, dst, *extra]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True)


# ---- comparing two models ----

def type_key(t):
    if not t.HasField("tensor_type"):
        return None
    tt = t.tensor_type
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
                      for d in tt.shape.dim)
    return tt.elem_type, shape


def tensor_key(t):
    return t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes()


def attr_key(a):
    v = helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.TENSOR:
        v = tensor_key(v)
    elif a.type == onnx.AttributeProto.FLOAT:
        v = np.float32(v).tobytes()
    elif a.type == onnx.AttributeProto.FLOATS:
        v = np.array(v, np.float32).tobytes()
    elif isinstance(v, list):
        v = tuple(v)
    return a.name, a.type, v


def node_key(n):
    return n.domain, n.op_type, tuple(n.input), tuple(n.output), tuple(sorted(attr_key(a) for a in n.attribute))


def graph_differences(a, b):
    """What differs between original `a` and saved `b`, as text; "" when they match."""
    ga, gb = a.graph, b.graph
    if sorted(map(node_key, ga.node)) != sorted(map(node_key, gb.node)):
        return "nodes or their attributes differ"
    names = {n.output[0]: n.name for n in gb.node if n.output}
    for n in ga.node:
        if n.name and n.output and names.get(n.output[0]) != n.name:
            return f"node '{n.name}' lost its name"
    inits = {t.name for t in ga.initializer}
    io = lambda vis: [(v.name, type_key(v.type)) for v in vis if v.name not in inits]
    if io(ga.input) != io(gb.input):
        return f"inputs differ: {io(ga.input)} vs {io(gb.input)}"
    if io(ga.output) != io(gb.output):
        return f"outputs differ: {io(ga.output)} vs {io(gb.output)}"
    saved_info = {v.name: type_key(v.type) for v in gb.value_info}
    edges = inits | {v.name for v in ga.input} | {v.name for v in ga.output}
    for v in ga.value_info:
        if v.name not in edges and type_key(v.type) is not None and saved_info.get(v.name) != type_key(v.type):
            return f"value_info of '{v.name}' differs"
    if {o.domain: o.version for o in a.opset_import} != {o.domain: o.version for o in b.opset_import}:
        return "opset imports differ"
    if a.ir_version != b.ir_version:
        return f"IR version {a.ir_version} became {b.ir_version}"
    if {p.key: p.value for p in a.metadata_props} != {p.key: p.value for p in b.metadata_props}:
        return "metadata differs"
    return ""


def initializer_differences(a, b):
    if [t.name for t in a.graph.initializer] != [t.name for t in b.graph.initializer]:
        return "initializer names or order differ"
    for x, y in zip(a.graph.initializer, b.graph.initializer):
        if tensor_key(x) != tensor_key(y):
            return f"initializer '{x.name}' differs in type, dims or bytes"
    return ""


def checker_passes(model):
    try:
        onnx.checker.check_model(model, full_check=True)
        return True, ""
    except Exception as e:  # the checker raises several kinds
        return False, str(e).splitlines()[0]


def test_inputs(model_dir, model):
    """Feeds from test_data_set_0, by the order of the graph's inputs; None when absent or not tensors."""
    files = sorted(glob.glob(os.path.join(model_dir, "test_data_set_0", "input_*.pb")),
                   key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
    inits = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in inits]
    if not files or len(files) != len(names):
        return None
    feeds = {}
    for name, path in zip(names, files):
        t = TensorProto()
        with open(path, "rb") as f:
            t.ParseFromString(f.read())
        if not t.HasField("data_type") or t.data_type == TensorProto.UNDEFINED:
            return None
        feeds[name] = numpy_helper.to_array(t)
    return feeds


def ort_outputs(path, feeds):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]).run(None, feeds)


def ort_differences(orig_path, saved_path, feeds):
    """"" when outputs are identical, None when onnxruntime cannot run the original."""
    try:
        want = ort_outputs(orig_path, feeds)
    except Exception:
        return None
    got = ort_outputs(saved_path, feeds)
    for i, (w, g) in enumerate(zip(want, got)):
        w, g = np.asarray(w), np.asarray(g)
        same = w.dtype == g.dtype and w.shape == g.shape and np.array_equal(
            w, g, equal_nan=w.dtype.kind in "fc")
        if not same:
            return f"output {i} differs"
    return ""


def check_model(orig_path, label, tmp, must_load=True):
    """Round-trips one model; returns False when graft does not load it (and need not)."""
    saved_path = os.path.join(tmp, "saved.onnx")
    proc = roundtrip(orig_path, saved_path)
    if proc.returncode:
        if not must_load and proc.returncode == 1 and SAVE_ERROR not in proc.stderr:
            return False
        report(False, label, proc.stderr.strip())
        return True
    a, b = onnx.load(orig_path), onnx.load(saved_path)
    problems = [f"unexpected output: {proc.stderr.strip()}"] if proc.stderr.strip() else []  # a sanitizer's report
    orig_ok, _ = checker_passes(a)
    saved_ok, why = checker_passes(b)
    if orig_ok and not saved_ok:
        problems.append(f"checker: {why}")
    problems += [d for d in (graph_differences(a, b), initializer_differences(a, b)) if d]
    feeds = test_inputs(os.path.dirname(orig_path), a)
    ran = "no test data"
    if feeds is not None:
        diff = ort_differences(orig_path, saved_path, feeds)
        ran = "onnxruntime cannot run it" if diff is None else "onnxruntime outputs identical"
        if diff:
            problems.append(diff)
    checked = "checker passes" if orig_ok else "checker refuses the original too"
    report(not problems, f"{label} ({checked}; {ran})", "; ".join(problems))
    os.remove(saved_path)
    return True


def exported_models(tmp):
    paths = sorted(glob.glob(os.path.join(ROOT, "models/onnx/generated/*/model.onnx")))
    if paths:
        return paths
    out = os.path.join(tmp, "exported")
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "models/onnx/export.py"), "--model", "resnet18",
                    "--form", "both", "--out", out], check=True)
    return sorted(glob.glob(os.path.join(out, "*/model.onnx")))


def node_test_sample():
    return sorted(glob.glob(os.path.join(NODE_TESTS, "*/model.onnx")))[::NODE_SAMPLE_STRIDE]


# ---- failures ----

def expect_failure(label, proc, *phrases):
    text = proc.stderr.strip()
    ok = proc.returncode == 1 and all(p in text for p in phrases)
    report(ok, f"{label}: {text}", f"exit {proc.returncode}, expected a message with {phrases}")


def leftovers(directory):
    return [f for f in os.listdir(directory) if ".tmp." in f]


def untouched(label, path, before, directory):
    with open(path, "rb") as f:
        same = f.read() == before
    temps = leftovers(directory)
    report(same and not temps, f"{label}: the existing file is intact, no temporary file left",
           f"intact={same}, temporaries={temps}")


def check_failures(small, big, tmp):
    with open(small, "rb") as f:
        small_bytes = f.read()

    missing = os.path.join(tmp, "no", "such", "dir", "model.onnx")
    expect_failure("missing directory", roundtrip(small, missing), missing, "No such file or directory")

    # A regular file where the directory should be: creating the temporary fails.
    not_dir = os.path.join(tmp, "plainfile")
    shutil.copy(small, not_dir)
    expect_failure("directory that is a file", roundtrip(small, os.path.join(not_dir, "model.onnx")),
                   not_dir, "Not a directory")
    untouched("directory that is a file", not_dir, small_bytes, tmp)

    # The target is a non-empty directory: the whole temporary is written, then the rename fails.
    target = os.path.join(tmp, "occupied")
    os.makedirs(os.path.join(target, "inside"))
    expect_failure("target that rename cannot replace", roundtrip(big, target), target, "cannot replace")
    report(os.path.isdir(os.path.join(target, "inside")) and not leftovers(tmp),
           "target that rename cannot replace: left as it was, no temporary file left")

    check_read_only_directory(small, small_bytes, tmp)
    check_full_disk(small, big, small_bytes, tmp)


def check_read_only_directory(small, small_bytes, tmp):
    ro = os.path.join(tmp, "readonly")
    os.makedirs(ro)
    existing = os.path.join(ro, "model.onnx")
    shutil.copy(small, existing)
    src = os.path.join(tmp, "source.onnx")
    shutil.copy(small, src)
    os.chmod(ro, 0o555)
    user = None
    if os.geteuid() == 0:
        # root writes anywhere whatever the mode: save as the unprivileged user 65534 instead
        if not shutil.which("setpriv"):
            print("SKIP: read-only directory: running as root and setpriv is missing")
            return
        user = 65534
        os.chmod(tmp, 0o755)
        os.chmod(src, 0o644)
    expect_failure("read-only directory", roundtrip(src, existing, user=user), existing, "Permission denied")
    untouched("read-only directory", existing, small_bytes, ro)
    os.chmod(ro, 0o755)


def check_full_disk(small, big, small_bytes, tmp):
    mnt = os.path.join(tmp, "tiny-fs")
    os.makedirs(mnt)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True, text=True)
    if mount.returncode:
        print(f"SKIP: full disk: cannot mount a small tmpfs ({mount.stderr.strip() or 'mount failed'})")
        return
    try:
        existing = os.path.join(mnt, "model.onnx")
        shutil.copy(small, existing)
        expect_failure("full disk", roundtrip(big, existing), existing, "No space left on device")
        untouched("full disk", existing, small_bytes, mnt)
    finally:
        subprocess.run(["umount", mnt], check=False)


def check_over_2gib(tmp):
    """A 2.2 GiB weight kept as sparse external data: loads in place, cannot be saved inline."""
    rows, cols = 2_300_000, 256
    with open(os.path.join(tmp, "weights.bin"), "wb") as f:
        f.truncate(rows * cols * 4)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[rows, cols], data_location=TensorProto.EXTERNAL)
    entry = w.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    graph = helper.make_graph([helper.make_node("Gather", ["w", "idx"], ["rows"], axis=0)], "big",
                              [helper.make_tensor_value_info("idx", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [1, cols])], [w])
    src = os.path.join(tmp, "big.onnx")
    with open(src, "wb") as f:
        f.write(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    out = os.path.join(tmp, "big-saved.onnx")
    expect_failure("over 2 GiB", roundtrip(src, out), out, "2 GiB")
    report(not os.path.exists(out) and not leftovers(tmp), "over 2 GiB: nothing written")
    os.remove(os.path.join(tmp, "weights.bin"))


def check_extras(small, tmp):
    out = os.path.join(tmp, "checkpoint.onnx")
    proc = roundtrip(small, out, "opt.m", "opt.v")
    if proc.returncode:
        report(False, "extra initializers and metadata", proc.stderr.strip())
        return
    a, b = onnx.load(small), onnx.load(out)
    n_own = len(a.graph.initializer)
    extra = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer[n_own:]}
    want = {name: np.arange(6, dtype=np.float32).reshape(2, 3) + 10 * k for k, name in enumerate(["opt.m", "opt.v"])}
    meta = {p.key: p.value for p in b.metadata_props}
    own_kept = all(tensor_key(x) == tensor_key(y) for x, y in zip(a.graph.initializer, b.graph.initializer[:n_own]))
    ok = (own_kept and list(extra) == list(want) and all(np.array_equal(extra[n], want[n]) for n in want)
          and meta == {"saver.extras": "2", "graft.step": "7"} and checker_passes(b)[0])
    report(ok, "extra initializers and metadata", f"own kept {own_kept}, extras {list(extra)}, metadata {meta}")
    # Saving the checkpoint again replaces its own graft.step rather than repeating the key.
    again = os.path.join(tmp, "checkpoint2.onnx")
    proc = roundtrip(out, again, "opt.w")
    meta = [(p.key, p.value) for p in onnx.load(again).metadata_props] if not proc.returncode else proc.stderr
    report(meta == [("saver.extras", "1"), ("graft.step", "7")], "an extra metadata key replaces the model's own",
           str(meta))
    first = a.graph.initializer[0].name
    expect_failure("extra tensor named like a value", roundtrip(small, out, first), first, "name of a value")
    expect_failure("extra tensor given twice", roundtrip(small, out, "x", "x"), "given twice")


def check_save_over_source(model, tmp):
    """Saving over the file the model was loaded (and mapped) from."""
    path = os.path.join(tmp, "in-place.onnx")
    shutil.copy(model, path)
    proc = roundtrip(path, path)
    diff = proc.stderr.strip() if proc.returncode else initializer_differences(onnx.load(model), onnx.load(path))
    report(not diff, "saving over the model's own file", diff)


def main():
    tmp = tempfile.mkdtemp(prefix="graft-saver-")
    try:
        models = exported_models(tmp) + sorted(glob.glob(os.path.join(ROOT, "models/onnx/tiny_cnn/*/model.onnx")))
        for path in models:
            check_model(path, os.path.relpath(path, ROOT), tmp)
        loaded = tried = 0
        for path in node_test_sample():
            tried += 1
            loaded += check_model(path, os.path.basename(os.path.dirname(path)), tmp, must_load=False)
        print(f"node tests: {loaded} of {tried} sampled load in graft and were round-tripped")
        small = sorted(glob.glob(os.path.join(ROOT, "models/onnx/tiny_cnn/*/model.onnx")))[0]
        big = min((m for m in models if os.path.getsize(m) > 4 << 20), key=os.path.getsize, default=None)
        if big is None:
            print("SKIP: failure cases need a model over 4 MiB")
        else:
            check_failures(small, big, tmp)
        check_over_2gib(tmp)
        check_extras(small, tmp)
        check_save_over_source(big or small, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
