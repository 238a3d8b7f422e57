"""The forms a valid ONNX file can take all load and run: initializers in
raw_data or in typed fields, external data files (one or many), IR version 3
with initializers listed among the inputs, Constant nodes, value_info, symbolic
dims, several inputs and outputs. graft against onnxruntime through `graft run`.

usage: test_load_forms.py GRAFT_BINARY
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

GRAFT = sys.argv[1]
rng = np.random.default_rng(7)


def vinfo(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def two_in_two_out(initializers, ir_version=8, opset=13, inits_as_inputs=False):
    """y = relu(a @ w + b) and z = a + c, with a Constant and value_info."""
    nodes = [
        helper.make_node("MatMul", ["a", "w"], ["aw"], name="mm"),
        helper.make_node("Add", ["aw", "b"], ["pre"], name="add_b"),
        helper.make_node("Relu", ["pre"], ["y"], name="relu"),
        helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(np.float32([2.0]), "k")),
        helper.make_node("Mul", ["c", "k"], ["c2"], name="mul_k"),
        helper.make_node("Add", ["a", "c2"], ["z"], name="add_c"),
    ]
    inputs = [vinfo("a", ["n", 4]), vinfo("c", ["n", 4])]
    if inits_as_inputs:
        inputs += [vinfo(t.name, list(t.dims)) for t in initializers]
    graph = helper.make_graph(nodes, "forms", inputs, [vinfo("y", ["n", 3]), vinfo("z", ["n", 4])],
                              initializers, value_info=[vinfo("pre", ["n", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def weights(typed):
    w, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    if typed:  # float_data, not raw_data
        return [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.flatten().tolist()),
                helper.make_tensor("b", TensorProto.FLOAT, b.shape, b.tolist())]
    return [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]


def run_and_compare(title, path, batch, tmp):
    a = rng.standard_normal((batch, 4)).astype(np.float32)
    c = rng.standard_normal((batch, 4)).astype(np.float32)
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"a": a, "c": c})
    args = [GRAFT, "run", path, "--output-dir", os.path.join(tmp, title)]
    for name, x in (("a", a), ("c", c)):
        p = os.path.join(tmp, f"{title}_{name}.pb")
        with open(p, "wb") as f:
            f.write(numpy_helper.from_array(x, name).SerializeToString())
        args += ["--input", p]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        print(f"FAIL {title}: {proc.stderr.strip()}")
        return 1
    bad = 0
    for i, want in enumerate(expected):
        t = TensorProto()
        with open(os.path.join(tmp, title, f"output_{i}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        got = numpy_helper.to_array(t)
        ok = got.shape == want.shape and np.allclose(got, want, rtol=1e-5, atol=1e-6)
        names_ok = t.name == ("y", "z")[i]
        if not (ok and names_ok):
            print(f"FAIL {title}: output {i} '{t.name}' {got.shape} differs from onnxruntime's {want.shape}")
            bad += 1
    if not bad:
        print(f"PASS {title} (batch {batch})")
    return bad


def main():
    tmp = tempfile.mkdtemp(prefix="graft-forms-")
    failures = 0
    cases = {
        "raw_data": two_in_two_out(weights(typed=False)),
        "typed_fields": two_in_two_out(weights(typed=True)),
        "ir3_opset7_initializers_as_inputs": two_in_two_out(weights(typed=False), ir_version=3, opset=7,
                                                            inits_as_inputs=True),
        "opset17": two_in_two_out(weights(typed=False), opset=17),
    }
    for title, model in cases.items():
        path = os.path.join(tmp, f"{title}.onnx")
        onnx.save(model, path)
        failures += run_and_compare(title, path, batch=3, tmp=tmp)

    for title, one_file in (("external_one_file", True), ("external_many_files", False)):
        folder = os.path.join(tmp, title)
        os.makedirs(folder)
        path = os.path.join(folder, "model.onnx")
        onnx.save_model(two_in_two_out(weights(typed=False)), path, save_as_external_data=True,
                        all_tensors_to_one_file=one_file, location="weights.bin" if one_file else None,
                        size_threshold=0)
        failures += run_and_compare(title, path, batch=5, tmp=tmp)
    print(f"load forms: {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
