#!/usr/bin/env python3
"""Resource limits: files that claim more than exists are refused with a message
that says what and where, before anything large is allocated; never the OOM
killer, never a crash.

    test_limits.py GRAFT_EXE SOURCE_ROOT

Each hostile file is built here (the onnx package, or raw protobuf bytes where the
onnx package would itself choke or take minutes). Every refusal must exit 1 with
the expected words in its message, and the process's peak resident memory must
stay small: a refusal after a large allocation is a failure too.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

ort.set_default_logger_severity(3)


def ort_run(model, feeds):
    so, ro = ort.SessionOptions(), ort.RunOptions()
    so.log_severity_level = ro.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds, ro)
from onnx import TensorProto, helper, numpy_helper

GRAFT, ROOT = sys.argv[1], sys.argv[2]
# Peak RSS allowed for a refusal. The sanitizer build's own overhead is a few hundred MiB.
MAX_RSS_MIB = 1024
failures, passes = [], 0


def sanitized(exe):
    """Whether graft was built with AddressSanitizer (linked in, or named as a library)."""
    with open(exe, "rb") as f:
        data = f.read()
    return b"AddressSanitizer" in data or b"libasan" in data


# A check that failed here would allocate as much as the machine has, on a machine shared
# with others: the children run where that cannot happen. The plain build under an
# address-space limit (which graft counts as the memory there is), the sanitizer build
# (which needs the address space for itself) with its allocator refusing anything over 4 GiB.
CHILD_AS = None if sanitized(GRAFT) else 8 << 30
CHILD_ENV = {**os.environ, "ASAN_OPTIONS": ":".join(
    o for o in (os.environ.get("ASAN_OPTIONS", ""), "max_allocation_size_mb=4096", "allocator_may_return_null=1") if o)}


def limit_child():
    if CHILD_AS:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_AS, CHILD_AS))


def check(what, ok, detail=""):
    global passes
    print(f"{'ok  ' if ok else 'FAIL'} {what}{'  ' + detail if detail and not ok else ''}", flush=True)
    if ok:
        passes += 1
    else:
        failures.append(what)


def graft(*args, timeout=300):
    """Runs graft; returns (exit code, stderr, peak RSS in MiB, seconds)."""
    t0 = time.time()
    p = subprocess.Popen([GRAFT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=CHILD_ENV, preexec_fn=limit_child)
    try:
        err = p.communicate(timeout=timeout)[1]
    finally:
        if p.poll() is None:
            p.kill()
    # the child is reaped by communicate; its rusage is in RUSAGE_CHILDREN only as a max, so
    # each call measures in a fresh wrapper instead (below) when the peak matters
    return p.returncode, err, time.time() - t0


def graft_rss(*args, timeout=300, env=None):
    """Runs graft through a one-shot wrapper that reports the child's own peak RSS."""
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
            "sys.stderr.write(p.stderr)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
            "sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)\n")
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", code, GRAFT, *args], capture_output=True, text=True, timeout=timeout,
                       env={**CHILD_ENV, **(env or {})}, preexec_fn=limit_child)
    rss = int(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else -1
    return p.returncode, p.stderr, rss, time.time() - t0


def refused(what, args, *needles, max_rss=MAX_RSS_MIB, env=None):
    """graft exits 1, names every needle, stays small and does not crash."""
    code, err, rss, secs = graft_rss(*args, env=env)
    crashed = code > 2 or "Sanitizer" in err or "runtime error" in err
    missing = [n for n in needles if n not in err]
    ok = code == 1 and not crashed and not missing and 0 <= rss <= max_rss
    first = err.strip().splitlines()[0][:300] if err.strip() else ""
    check(f"{what}: refused ({first})" if ok else what, ok,
          f"exit {code}, peak {rss} MiB, {secs:.1f} s, missing {missing}: {err.strip()[:600]}")


def save(model, path):
    with open(path, "wb") as f:
        f.write(model.SerializeToString() if hasattr(model, "SerializeToString") else model)
    return path


def model_of(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def write_pb(path, array, name="x"):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())
    return path


def memory_bytes():
    """The memory there is for graft's children, as graft counts it: RAM + swap, or the
    address-space limit they run under, or a cgroup's limit."""
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            fields[k] = int(v.split()[0]) * 1024
    mem = fields["MemTotal"] + fields.get("SwapTotal", 0)
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            mem = min(mem, int(f.read().split()[0]))
    except (OSError, ValueError):
        pass
    return min(mem, CHILD_AS) if CHILD_AS else mem


# ---- raw protobuf, for files the onnx package would take minutes to build ----

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def ld(number, payload):
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def raw_model(graph_fields, opset=13):
    """ModelProto bytes: ir_version 8, graph (field 7) from its fields' bytes, opset import."""
    return varint(1 << 3) + varint(8) + ld(7, graph_fields) + ld(8, ld(1, b"") + varint(2 << 3) + varint(opset))


def raw_value_info(name, dims):
    shape = b"".join(ld(1, varint(1 << 3) + varint(d)) for d in dims)
    tensor_type = varint(1 << 3) + varint(1) + ld(2, shape)
    return ld(1, name.encode()) + ld(2, ld(1, tensor_type))


# ---- the cases ----

def tensors_claiming_too_much(tmp):
    mem = memory_bytes()
    # An initializer whose dims claim 4 TiB, with no data behind them.
    big = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    m = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [big])
    refused("initializer claiming 4 TiB without data", ["info", save(m, os.path.join(tmp, "big_init.onnx"))],
            "'w'", "holds 0 values", "1099511627776")
    big.raw_data = b"\0" * 16
    m = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [big])
    refused("initializer claiming 4 TiB with 16 bytes of raw data",
            ["info", save(m, os.path.join(tmp, "big_raw.onnx"))], "'w'", "16 bytes", "4398046511104")
    # Its dims overflow int64 when multiplied.
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40])
    m = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [huge])
    refused("initializer whose dims overflow", ["info", save(m, os.path.join(tmp, "overflow.onnx"))],
            "'w'", "more elements than can exist")
    # External data: 1 TiB claimed, 16 bytes in the file.
    ext = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 38])
    ext.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0")):
        e = ext.external_data.add()
        e.key, e.value = k, v
    with open(os.path.join(tmp, "w.bin"), "wb") as f:
        f.write(b"\0" * 16)
    m = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [ext])
    refused("external data claiming 1 TiB", ["info", save(m, os.path.join(tmp, "ext_big.onnx"))],
            "'w'", "w.bin", "holds 16 bytes")
    # A tensor file (graft run --input) claiming 4 TiB.
    pb = TensorProto(name="x", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    relu = save(model_of([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", ["a", "b"])],
                         [vi("y", ["a", "b"])]), os.path.join(tmp, "relu.onnx"))
    save(pb, os.path.join(tmp, "big.pb"))
    refused("input tensor file claiming 4 TiB", ["run", relu, "--input", os.path.join(tmp, "big.pb"),
                                                 "--output-dir", tmp], "big.pb", "holds 0 values")
    # Computed tensors: a constant shape asking for twice the machine's memory, folded at plan time.
    n = 2 * mem // 4
    shape = numpy_helper.from_array(np.array([n // 1024, 1024], np.int64), "shape")
    m = model_of([helper.make_node("ConstantOfShape", ["shape"], ["c"], name="fill"),
                  helper.make_node("Add", ["x", "c"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [shape])
    x1 = write_pb(os.path.join(tmp, "x1.pb"), np.zeros(1, np.float32))
    refused("ConstantOfShape of twice the memory there is",
            ["run", save(m, os.path.join(tmp, "fill.onnx")), "--input", x1, "--output-dir", tmp],
            "fill", "ConstantOfShape", "more than the", "of memory there is")
    # ... and of 4 PiB (its element count still fits in int64).
    shape = numpy_helper.from_array(np.array([1 << 30, 1 << 20], np.int64), "shape")
    m = model_of([helper.make_node("ConstantOfShape", ["shape"], ["c"], name="fill"),
                  helper.make_node("Add", ["x", "c"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [shape])
    refused("ConstantOfShape of 4 PiB", ["run", save(m, os.path.join(tmp, "fill4p.onnx")), "--input", x1,
                                         "--output-dir", tmp], "fill", "4.0 PiB", "of memory there is")
    # Activations, each under the memory there is, together over it: refused at the arena.
    k = int(0.7 * mem) // 4  # a and b live together: 1.4 times the memory, each under it
    kk = numpy_helper.from_array(np.array([k], np.int64), "k")
    m = model_of([helper.make_node("Expand", ["x", "k"], ["a"], name="a"),
                  helper.make_node("Neg", ["a"], ["b"], name="b"),
                  helper.make_node("Add", ["a", "b"], ["c"], name="c")], [vi("x", [1])], [vi("c", None)], [kk])
    refused("activations that together need more than the memory there is",
            ["run", save(m, os.path.join(tmp, "arena.onnx")), "--input", x1, "--output-dir", tmp],
            "activations and outputs need", "of memory there is")


def memory_budget(tmp):
    # GRAFT_MEMORY_LIMIT lowers the memory graft counts as there: a 64 MiB constant under 16M.
    shape = numpy_helper.from_array(np.array([16, 1 << 20], np.int64), "shape")
    m = model_of([helper.make_node("ConstantOfShape", ["shape"], ["c"], name="fill"),
                  helper.make_node("ReduceSum", ["c"], ["s"], name="sum", keepdims=0),
                  helper.make_node("Add", ["x", "s"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [shape])
    path = save(m, os.path.join(tmp, "fill64m.onnx"))
    x1 = write_pb(os.path.join(tmp, "x1.pb"), np.zeros(1, np.float32))
    run = ["run", path, "--input", x1, "--output-dir", tmp]
    refused("a 64 MiB constant under GRAFT_MEMORY_LIMIT=16M", run, "fill", "64.0 MiB", "16.0 MiB of memory there is",
            env={"GRAFT_MEMORY_LIMIT": "16M"})
    code, err, _, _ = graft_rss(*run, env={"GRAFT_MEMORY_LIMIT": "1G"})
    check("... and it runs under GRAFT_MEMORY_LIMIT=1G", code == 0, err[-600:])
    code, err, _, _ = graft_rss(*run, env={"GRAFT_MEMORY_LIMIT": "lots"})
    check("GRAFT_MEMORY_LIMIT=lots is ignored with a warning", code == 0 and "GRAFT_MEMORY_LIMIT='lots'" in err,
          err[-600:])


def million_nodes(tmp):
    # A chain of a million Relu nodes, as raw bytes (about 20 MB): refused before parsing.
    nodes = [ld(1, ld(1, f"v{i}".encode()) + ld(2, f"v{i + 1}".encode()) + ld(4, b"Relu")) for i in range(1000000)]
    graph = b"".join(nodes) + ld(2, b"chain") + ld(11, raw_value_info("v0", [4])) + ld(12, raw_value_info("v1000000", [4]))
    path = save(raw_model(graph), os.path.join(tmp, "million.onnx"))
    refused("a graph of a million nodes", ["info", path], "million.onnx", "1000000 nodes", "at most 262144")
    # 50000 nodes are a lot, but allowed: they load, plan and run.
    nodes = [ld(1, ld(1, f"v{i}".encode()) + ld(2, f"v{i + 1}".encode()) + ld(4, b"Relu")) for i in range(50000)]
    graph = b"".join(nodes) + ld(2, b"chain") + ld(11, raw_value_info("v0", [4])) + ld(12, raw_value_info("v50000", [4]))
    path = save(raw_model(graph), os.path.join(tmp, "hundred_thousand.onnx"))
    x = write_pb(os.path.join(tmp, "x4.pb"), np.array([-1, 0, 1, 2], np.float32), "v0")
    out = os.path.join(tmp, "chain_out")
    code, err, secs = graft("run", path, "--input", x, "--output-dir", out)
    y = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_0.pb"))) if code == 0 else None
    check(f"a chain of 50000 Relu nodes runs ({secs:.1f} s)", y is not None and list(y) == [0, 0, 1, 2], err[:400])


def absurd_lists(tmp):
    # Transpose with a perm of ten million ints (packed: 10 MB).
    perm = varint(8 << 3 | 2) + varint(10_000_000) + b"\x01" * 10_000_000
    attr = ld(1, b"perm") + varint(20 << 3) + varint(7) + perm
    node = ld(1, b"x") + ld(2, b"y") + ld(3, b"transpose") + ld(4, b"Transpose") + ld(5, attr)
    graph = ld(1, node) + ld(11, raw_value_info("x", [2, 3])) + ld(12, raw_value_info("y", [3, 2]))
    refused("an attribute of ten million ints", ["info", save(raw_model(graph), os.path.join(tmp, "perm.onnx"))],
            "transpose", "Transpose", "'perm'", "ints", "at most 1048576")
    # The same, unpacked (each int its own field).
    perm = (varint(8 << 3) + b"\x01") * 2_000_000
    attr = ld(1, b"perm") + varint(20 << 3) + varint(7) + perm
    node = ld(1, b"x") + ld(2, b"y") + ld(3, b"transpose") + ld(4, b"Transpose") + ld(5, attr)
    graph = ld(1, node) + ld(11, raw_value_info("x", [2, 3])) + ld(12, raw_value_info("y", [3, 2]))
    refused("an attribute of two million unpacked ints",
            ["info", save(raw_model(graph), os.path.join(tmp, "perm_unpacked.onnx"))], "'perm'", "at most 1048576")
    # A node with two million inputs, and one with two million attributes.
    node = b"".join(ld(1, b"x") for _ in range(2_000_000)) + ld(2, b"y") + ld(3, b"sum") + ld(4, b"Sum")
    graph = ld(1, node) + ld(11, raw_value_info("x", [2])) + ld(12, raw_value_info("y", [2]))
    refused("a node with two million inputs", ["info", save(raw_model(graph), os.path.join(tmp, "inputs.onnx"))],
            "'sum' (Sum)", "inputs", "at most 1048576")
    node = ld(1, b"x") + ld(2, b"y") + ld(3, b"relu") + ld(4, b"Relu") + ld(5, ld(1, b"a")) * 2_000_000
    graph = ld(1, node) + ld(11, raw_value_info("x", [2])) + ld(12, raw_value_info("y", [2]))
    refused("a node with two million attributes", ["info", save(raw_model(graph), os.path.join(tmp, "attrs.onnx"))],
            "'relu' (Relu)", "attributes", "at most 1048576")
    # Four million empty initializers: structure, not data.
    graph = ld(5, b"") * 4_000_000 + ld(11, raw_value_info("x", [2])) + ld(12, raw_value_info("x", [2]))
    refused("four million empty initializers", ["info", save(raw_model(graph), os.path.join(tmp, "inits.onnx"))],
            "initializer", "at most 1048576")
    # A tensor file with ten million dims.
    pb = varint(1 << 3 | 2) + varint(10_000_000) + b"\x01" * 10_000_000 + varint(2 << 3) + varint(1)
    relu = os.path.join(tmp, "relu.onnx")
    refused("a tensor file with ten million dims",
            ["run", relu, "--input", save(pb, os.path.join(tmp, "dims.pb")), "--output-dir", tmp],
            "dims.pb", "'dims'", "at most 1048576")
    # Types nested 100000 deep: protobuf-c's parser recursion would overflow the stack.
    t = b""
    for _ in range(100000):
        t = ld(4, ld(1, t))  # TypeProto.sequence_type -> Sequence.elem_type -> TypeProto ...
    graph = ld(11, ld(1, b"x") + ld(2, t)) + ld(12, ld(1, b"x"))
    refused("types nested 100000 deep", ["info", save(raw_model(graph), os.path.join(tmp, "deep.onnx"))],
            "nest more than 64 deep")
    # Subgraphs nested 1000 deep (If inside If ...).
    g = ld(2, b"leaf")
    for i in range(1000):
        attr = ld(1, b"then_branch") + varint(20 << 3) + varint(5) + ld(6, g)
        g = ld(1, ld(1, b"c") + ld(2, f"o{i}".encode()) + ld(4, b"If") + ld(5, attr)) + ld(2, f"g{i}".encode())
    graph = g + ld(11, raw_value_info("c", [1])) + ld(12, ld(1, b"o999"))
    refused("subgraphs nested 1000 deep", ["info", save(raw_model(graph), os.path.join(tmp, "deep_if.onnx"))],
            "nest more than 64 deep")


def negative_dims(tmp):
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-3, 4])
    m = model_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", None)], [w])
    refused("initializer with a negative dim", ["info", save(m, os.path.join(tmp, "neg_init.onnx"))],
            "'w'", "negative", "-3")
    relu = os.path.join(tmp, "relu.onnx")
    pb = TensorProto(name="x", data_type=TensorProto.FLOAT, dims=[2, -2])
    refused("input tensor file with a negative dim",
            ["run", relu, "--input", save(pb, os.path.join(tmp, "neg.pb")), "--output-dir", tmp], "neg.pb", "-2")
    x1 = write_pb(os.path.join(tmp, "x1.pb"), np.zeros(1, np.float32))
    x6 = write_pb(os.path.join(tmp, "x6.pb"), np.zeros((2, 3), np.float32))
    cases = {
        "Reshape to a shape with -2": ([helper.make_node("Reshape", ["x", "s"], ["y"], name="op")],
                                       [numpy_helper.from_array(np.array([-2, 3], np.int64), "s")], x6),
        "ConstantOfShape of a negative dim": ([helper.make_node("ConstantOfShape", ["s"], ["c"], name="op"),
                                               helper.make_node("Add", ["x", "c"], ["y"], name="add")],
                                              [numpy_helper.from_array(np.array([4, -5], np.int64), "s")], x1),
        "Expand to a negative dim": ([helper.make_node("Expand", ["x", "s"], ["y"], name="op")],
                                     [numpy_helper.from_array(np.array([-3], np.int64), "s")], x1),
        "Tile with negative repeats": ([helper.make_node("Tile", ["x", "s"], ["y"], name="op")],
                                       [numpy_helper.from_array(np.array([-2, 1], np.int64), "s")], x6),
        "Pad that makes a dim negative": ([helper.make_node("Pad", ["x", "s"], ["y"], name="op")],
                                          [numpy_helper.from_array(np.array([0, -5, 0, 0], np.int64), "s")], x6),
    }
    for what, (nodes, inits, x) in cases.items():
        shape = [1] if x == x1 else [2, 3]
        m = model_of(nodes, [vi("x", shape)], [vi("y", None)], inits)
        path = save(m, os.path.join(tmp, what.replace(" ", "_") + ".onnx"))
        code, err, _ = graft("run", path, "--input", x, "--output-dir", os.path.join(tmp, "o"))
        crashed = code > 2 or "Sanitizer" in err or "runtime error" in err
        ort_ok = True
        try:
            ort_run(m, {"x": np.zeros(shape, np.float32)})
        except Exception:
            ort_ok = False
        check(f"{what}: refused, naming the node, as onnxruntime refuses it",
              code == 1 and not crashed and "'op'" in err and not ort_ok, f"exit {code}: {err.strip()[:400]}")
    # A declared dim that is negative means "unknown", as onnx.checker and onnxruntime take it.
    m = model_of([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [-1, 3])], [vi("y", [-1, 3])])
    code, err, _ = graft("run", save(m, os.path.join(tmp, "declared_neg.onnx")), "--input", x6, "--output-dir",
                         os.path.join(tmp, "o"))
    check("a declared dim of -1 is unknown, as in onnxruntime", code == 0, err[:300])


def zero_dims(tmp):
    """Empty tensors are valid ONNX: each op gives what onnxruntime gives, or refuses
    with a message; nothing divides by zero or reads out of bounds."""
    def ints(name, values):
        return numpy_helper.from_array(np.array(values, np.int64), name)

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    cases = [
        ("Relu", [helper.make_node("Relu", ["x"], ["y"])], [], (0, 3)),
        ("Reshape -1 of an empty tensor", [helper.make_node("Reshape", ["x", "s"], ["y"])], [ints("s", [-1, 3])], (0, 3)),
        ("Reshape keeping a 0 dim", [helper.make_node("Reshape", ["x", "s"], ["y"])], [ints("s", [0, -1])], (0, 6)),
        ("Flatten", [helper.make_node("Flatten", ["x"], ["y"], axis=1)], [], (0, 3, 2)),
        ("Conv on a batch of 0", [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [w], (0, 3, 5, 5)),
        ("MaxPool on a batch of 0", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2])], [], (0, 3, 4, 4)),
        ("GlobalAveragePool of 0 channels", [helper.make_node("GlobalAveragePool", ["x"], ["y"])], [], (1, 0, 4, 4),
         lambda x: [x.mean(axis=(2, 3), keepdims=True)]),
        ("Softmax over an empty axis", [helper.make_node("Softmax", ["x"], ["y"], axis=1)], [], (2, 0)),
        ("Softmax of an empty batch", [helper.make_node("Softmax", ["x"], ["y"], axis=1)], [], (0, 5)),
        ("MatMul with K = 0", [helper.make_node("MatMul", ["x", "b"], ["y"])],
         [numpy_helper.from_array(np.ones((0, 4), np.float32), "b")], (3, 0)),
        ("Gemm with K = 0", [helper.make_node("Gemm", ["x", "b"], ["y"])],
         [numpy_helper.from_array(np.ones((0, 4), np.float32), "b")], (3, 0)),
        ("ReduceSum over an empty axis", [helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)],
         [ints("a", [1])], (2, 0)),
        ("ReduceMax of an empty batch", [helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=1)], [], (0, 3)),
        ("Concat with an empty part", [helper.make_node("Concat", ["x", "x"], ["y"], axis=0)], [], (0, 3)),
        ("Split into empty parts", [helper.make_node("Split", ["x", "s"], ["y", "z"], axis=0)], [ints("s", [0, 0])],
         (0, 3)),
        ("Transpose", [helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0])], [], (0, 3)),
        ("Slice to nothing", [helper.make_node("Slice", ["x", "st", "en"], ["y"])],
         [ints("st", [1]), ints("en", [1])], (3, 2)),
        ("Gather from an empty axis", [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
         [ints("i", [[]])], (2, 3)),
        ("Tile by 0", [helper.make_node("Tile", ["x", "r"], ["y"])], [ints("r", [0, 2])], (2, 3)),
        ("Expand from empty", [helper.make_node("Expand", ["x", "s"], ["y"])], [ints("s", [0, 3])], (1, 3)),
        ("BatchNormalization of a batch of 0",
         [helper.make_node("BatchNormalization", ["x", "sc", "bi", "me", "va"], ["y"])],
         [numpy_helper.from_array(np.ones(3, np.float32), n) for n in ("sc", "bi", "me", "va")], (0, 3, 2, 2)),
        ("Resize of an empty batch", [helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest")],
         [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")], (0, 1, 2, 2)),
        ("Pad an empty tensor", [helper.make_node("Pad", ["x", "p"], ["y"])], [ints("p", [1, 0, 1, 0])], (0, 2)),
        ("ArgMax of an empty batch", [helper.make_node("ArgMax", ["x"], ["y"], axis=1)], [], (0, 4),
         lambda x: [np.argmax(x, axis=1)[:, None]]),
        ("Where on empty", [helper.make_node("Greater", ["x", "x"], ["c"]), helper.make_node("Where", ["c", "x", "x"], ["y"])],
         [], (0, 2)),
        ("TopK of nothing", [helper.make_node("TopK", ["x", "k"], ["y", "i"], axis=1)], [ints("k", [0])], (2, 3),
         lambda x: [x[:, :0], np.zeros((2, 0), np.int64)]),
        ("NonZero of an empty tensor", [helper.make_node("NonZero", ["x"], ["y"])], [], (0, 3),
         lambda x: [np.array(np.nonzero(x), np.int64)]),
    ]
    for what, nodes, inits, shape, *numpy_ref in cases:
        outs = [o for n in nodes for o in n.output if o in ("y", "z", "i")]
        m = model_of(nodes, [vi("x", list(shape))], [vi(o, None) for o in outs], inits)
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ort_ran = False
        try:
            ref = ort_run(m, {"x": x})
            ort_ran = True
        except Exception:
            # where onnxruntime refuses an empty tensor (its limitation, not the spec's), numpy says
            ref = numpy_ref[0](x) if numpy_ref else None
        path = save(m, os.path.join(tmp, "zero.onnx"))
        xin = write_pb(os.path.join(tmp, "zx.pb"), x)
        out = os.path.join(tmp, "zero_out")
        code, err, _ = graft("run", path, "--input", xin, "--output-dir", out)
        crashed = code > 2 or "Sanitizer" in err or "runtime error" in err
        if code == 0:
            ours = [numpy_helper.to_array(onnx.load_tensor(os.path.join(out, f"output_{k}.pb"))) for k in range(len(outs))]
            same = ref is not None and len(ref) == len(ours) and all(
                a.shape == b.shape and a.dtype == b.dtype and np.allclose(a, b, equal_nan=True) for a, b in zip(ours, ref))
            check(f"zero dims, {what}: as {'numpy' if numpy_ref and ref is not None and not ort_ran else 'onnxruntime'}, "
                  f"{[tuple(o.shape) for o in ours]}", same,
                  f"graft {[o.shape for o in ours]}, onnxruntime {None if ref is None else [r.shape for r in ref]}")
        else:
            check(f"zero dims, {what}: refused with a message ({err.strip().splitlines()[0][:160] if err.strip() else ''})",
                  code == 1 and not crashed and err.strip(), f"exit {code}: {err.strip()[:400]}")


def images(tmp):
    """Decompression bombs: headers that claim far more than the file holds, and a
    progressive JPEG whose thousands of scans would each walk the whole image."""
    model = os.path.join(ROOT, "models/onnx/tiny_cnn/tiny_cnn/model.onnx")
    found = os.path.join(ROOT, "tests/fuzz/regressions/image")
    for name, needles in (("progressive-claims-16000x16000-in-777-bytes.jpg", ("16000x16000", "needs at least")),
                          ("baseline-claims-16000x16000.jpg", ("16000x16000", "needs at least")),
                          # found by fuzz_image: 64 s and 400 MB in the sanitizer build before the check
                          ("fuzz-slow-progressive-8480x4113-in-403-bytes.jpg", ("8480x4113", "needs at least")),
                          ("progressive-3000-scans.jpg", ("more than 500 scans",))):
        code, err, rss, secs = graft_rss("run", model, "--image", os.path.join(found, name))
        ok = code == 1 and all(n in err for n in needles) and name in err and rss <= 256 and secs < 30
        check(f"image {name}: refused in {secs:.1f} s, peak {rss} MiB ({err.strip()[:160]})", ok,
              f"exit {code}: {err.strip()[:400]}")


def checkpoints(tmp):
    """A checkpoint is a file like any other: its step count, its bytes, its tensors."""
    model = os.path.join(ROOT, "models/onnx/tiny_cnn/tiny_cnn_bn/model.onnx")
    rng = np.random.default_rng(0)
    data = ["--inputs", write_pb(os.path.join(tmp, "ckx.pb"), rng.standard_normal((8, 3, 12, 12)).astype(np.float32)),
            "--labels", write_pb(os.path.join(tmp, "cky.pb"), rng.integers(0, 10, 8).astype(np.int64), "y"),
            "--batch", "4", "--optim", "sgd", "--momentum", "0.9", "--quiet"]
    ck = os.path.join(tmp, "ck.onnx")
    code, err, _ = graft("train", model, *data, "--steps", "2", "--checkpoint", ck)
    check("a checkpoint to spoil", code == 0, err)
    for step in ("-5", "99999999999999999999", "9223372036854775807", "abc", ""):
        m = onnx.load(ck)
        for p in m.metadata_props:
            if p.key == "graft.step":
                p.value = step
        bad = save(m, os.path.join(tmp, "bad_step.onnx"))
        refused(f"a checkpoint whose graft.step is '{step}'", ["train", model, *data, "--steps", "6", "--resume", bad],
                "bad_step.onnx", "graft.step", "not a count of steps")
    whole = open(ck, "rb").read()
    refused("a checkpoint cut in half", ["train", model, *data, "--steps", "6", "--resume",
                                         save(whole[:len(whole) // 2], os.path.join(tmp, "half.onnx"))], "half.onnx")
    m = onnx.load(ck)
    for i, t in enumerate(m.graph.initializer):
        if t.name.endswith(".momentum_buffer"):
            a = numpy_helper.to_array(t)
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.zeros((a.shape[0] + 1, *a.shape[1:]), a.dtype),
                                                                    t.name))
            name = t.name
            break
    refused("a checkpoint whose optimizer state has another shape",
            ["train", model, *data, "--steps", "6", "--resume", save(m, os.path.join(tmp, "state.onnx"))],
            "state.onnx", name, "another shape")


def main():
    with tempfile.TemporaryDirectory(prefix="graft-limits-") as tmp:
        images(tmp)
        checkpoints(tmp)
        tensors_claiming_too_much(tmp)
        memory_budget(tmp)
        million_nodes(tmp)
        absurd_lists(tmp)
        negative_dims(tmp)
        zero_dims(tmp)
    print(f"limits: {passes} passed, {len(failures)} failed")
    for f in failures:
        print("  FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
