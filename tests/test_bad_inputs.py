"""Hostile and broken inputs: each gives one clear message that names what is
wrong and where, and a non-zero exit; never a crash.

usage: test_bad_inputs.py GRAFT_BINARY
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GRAFT = sys.argv[1]
failures = 0


def small_model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def vinfo(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def save(model, path, check=False):
    if check:
        onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def expect_error(title, args, *needles):
    """Runs graft, expects exit 1 and every needle in its stderr."""
    global failures
    proc = subprocess.run([GRAFT, *args], capture_output=True, text=True, timeout=120)
    err = proc.stderr
    crashed = proc.returncode < 0 or proc.returncode > 2 or "Sanitizer" in err or "runtime error" in err
    missing = [n for n in needles if n not in err]
    if proc.returncode == 0 or crashed or missing:
        failures += 1
        print(f"FAIL {title}: exit {proc.returncode}, missing {missing}\n  stderr: {err.strip()[:800]}")
    else:
        print(f"PASS {title}: {err.strip().splitlines()[0][:200]}")


def main():
    tmp = tempfile.mkdtemp(prefix="graft-bad-")
    p = lambda name: os.path.join(tmp, name)

    relu = small_model([helper.make_node("Relu", ["x"], ["y"], name="relu1")],
                       [vinfo("x", ["batch", 4])], [vinfo("y", ["batch", 4])])
    good = save(relu, p("good.onnx"), check=True)
    data = open(good, "rb").read()

    with open(p("truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    expect_error("truncated file", ["info", p("truncated.onnx")], "truncated.onnx")

    with open(p("random.onnx"), "wb") as f:
        f.write(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    expect_error("random bytes", ["info", p("random.onnx")], "random.onnx")

    with open(p("empty.onnx"), "wb") as f:
        pass
    expect_error("empty file", ["info", p("empty.onnx")], "empty.onnx", "empty")

    # ModelProto field 7 (graph) sent as a varint instead of a message.
    with open(p("wrongtype.onnx"), "wb") as f:
        f.write(bytes([0x08, 0x07, 0x38, 0x05]))
    expect_error("protobuf with wrong field types", ["info", p("wrongtype.onnx")], "wrongtype.onnx")

    expect_error("missing file", ["info", p("nope.onnx")], "nope.onnx")

    cycle = small_model([helper.make_node("Relu", ["x", "c"], ["a"], name="first"),
                         helper.make_node("Add", ["a", "x"], ["c"], name="second")],
                        [vinfo("x", [4])], [vinfo("c", [4])])
    expect_error("graph with a cycle", ["info", save(cycle, p("cycle.onnx"))], "cycle", "cycle.onnx")

    dangling = small_model([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")],
                           [vinfo("x", [4])], [vinfo("y", [4])])
    expect_error("dangling input", ["info", save(dangling, p("dangling.onnx"))], "adder", "ghost")

    unknown = small_model([helper.make_node("FrobnicateAll", ["x"], ["t"], name="frob"),
                           helper.make_node("Relu", ["t"], ["u"], name="ok"),
                           helper.make_node("Wobble", ["u"], ["y"], name="wob", domain="com.example")],
                          [vinfo("x", [4])], [vinfo("y", [4])])
    unknown.opset_import.append(helper.make_opsetid("com.example", 1))
    # Every unsupported node is listed at once, each with its name and op.
    expect_error("unknown op and domain", ["info", save(unknown, p("unknown.onnx"))],
                 "2 nodes cannot run", "frob", "FrobnicateAll", "wob", "com.example.Wobble")

    short_w = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    short_w.raw_data = b"\0" * 8  # half of what its dims need
    short = small_model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vinfo("x", [4])],
                        [vinfo("y", [4])], [short_w])
    expect_error("tensor data shorter than its dims", ["info", save(short, p("short.onnx"))],
                 "'w'", "8 bytes", "16")

    ext = small_model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vinfo("x", [4])],
                      [vinfo("y", [4])], [numpy_helper.from_array(np.ones(4, np.float32), "w")])
    onnx.save_model(ext, p("ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.bin", size_threshold=0)
    os.remove(p("ext.bin"))
    expect_error("missing external data file", ["info", p("ext.onnx")], "ext.bin", "'w'")

    # Wrong input shape and dtype at run time.
    os.makedirs(p("out"), exist_ok=True)
    wrong_rank = p("wrong_rank.pb")
    with open(wrong_rank, "wb") as f:
        f.write(numpy_helper.from_array(np.zeros((2, 3, 5), np.float32), "x").SerializeToString())
    expect_error("input of the wrong shape", ["run", good, "--input", wrong_rank, "--output-dir", p("out")],
                 "'x'", "[batch,4]", "[2,3,5]")
    wrong_type = p("wrong_type.pb")
    with open(wrong_type, "wb") as f:
        f.write(numpy_helper.from_array(np.zeros((2, 4), np.int64), "x").SerializeToString())
    expect_error("input of the wrong dtype", ["run", good, "--input", wrong_type, "--output-dir", p("out")],
                 "'x'", "float32", "int64")

    # Shapes that do not fit together are found when planning, naming the node.
    mismatch = small_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [vinfo("x", [2, 4])],
                           [vinfo("y", [2, 3])], [numpy_helper.from_array(np.ones((5, 3), np.float32), "w")])
    x_ok = p("x24.pb")
    with open(x_ok, "wb") as f:
        f.write(numpy_helper.from_array(np.zeros((2, 4), np.float32), "x").SerializeToString())
    expect_error("shapes that do not fit", ["run", save(mismatch, p("mismatch.onnx")), "--input", x_ok,
                                            "--output-dir", p("out")], "mm", "MatMul")

    not_image = p("photo.jpg")
    with open(not_image, "w") as f:
        f.write("this is not a JPEG\n")
    expect_error("image file that is not an image", ["run", good, "--image", not_image], "photo.jpg")

    print(f"bad inputs: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
