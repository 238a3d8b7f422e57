"""The models written by models/onnx/export.py are valid ONNX and compute what
PyTorch computed: each case passes onnx.checker (full check), has its
BatchNormalization nodes folded away (eval form, <name>) or kept in inference
mode (train form, <name>_bn), and onnxruntime's outputs on the stored input
match the stored PyTorch outputs within 1e-4 * max|torch| + 1e-5.

usage: test_onnx_exports.py MODELS_DIR [NAME_SUBSTRING]
Exit 0 all passed, 1 any failed, 77 no case found.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper


def read_pb(path):
    tensor = TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return tensor.name, numpy_helper.to_array(tensor)


def check_batchnorm(model, is_train_form):
    """Returns a problem, or None."""
    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    if not is_train_form:
        return f"{len(bns)} BatchNormalization nodes in the eval form" if bns else None
    if not bns:
        return "no BatchNormalization node in the train form"
    for node in bns:
        if len(node.output) != 1 or any(a.name == "training_mode" and a.i for a in node.attribute):
            return f"BatchNormalization {node.name} is in training mode"
    return None


def check_case(case):
    """Returns (passed, message)."""
    path = os.path.join(case, "model.onnx")
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    problem = check_batchnorm(model, os.path.basename(case).endswith("_bn"))
    if problem:
        return False, problem
    data = os.path.join(case, "test_data_set_0")
    feeds = dict(read_pb(os.path.join(data, f)) for f in sorted(os.listdir(data)) if f.startswith("input_"))
    expected = [read_pb(os.path.join(data, f"output_{i}.pb"))[1] for i in range(len(model.graph.output))]
    del model
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    passed, parts = True, []
    for i, (g, e) in enumerate(zip(got, expected)):
        tol = 1e-4 * float(np.abs(e).max()) + 1e-5
        err = float(np.abs(g - e).max()) if g.shape == e.shape else float("inf")
        passed &= err <= tol
        parts.append(f"output {i} {e.shape}: max abs diff {err:.3g} "
                     f"(tolerance {tol:.3g}, max|torch| {np.abs(e).max():.3g})")
    return passed, "; ".join(parts)


def main():
    root = sys.argv[1]
    pattern = sys.argv[2] if len(sys.argv) > 2 else ""
    cases = sorted(os.path.join(root, d) for d in os.listdir(root) if pattern in d
                   and os.path.isfile(os.path.join(root, d, "model.onnx"))) if os.path.isdir(root) else []
    if not cases:
        print(f"no exported models in {root}: run models/onnx/export.py first")
        return 77
    passed = failed = 0
    for case in cases:
        try:
            ok, message = check_case(case)
        except Exception as e:  # a checker or onnxruntime error is this case's failure
            ok, message = False, f"{type(e).__name__}: {e}"
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {os.path.basename(case)}: {message}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
