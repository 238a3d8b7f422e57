"""A model exported with a symbolic batch dim runs at any batch, and a
convolutional one at other image sizes: graft against onnxruntime on the same
inputs, through `graft run`.

usage: test_any_batch.py GRAFT_BINARY MODELS_DIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper

GRAFT, MODELS = sys.argv[1], sys.argv[2]
CASES = [  # model, batch, height, width
    ("resnet18", 3, 224, 224),
    ("resnet18", 2, 160, 192),
    ("resnet50_bn", 2, 128, 128),
    ("fcn8s", 2, 192, 160),
]


def write_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def read_pb(path):
    from onnx import TensorProto
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def main():
    failures = ran = 0
    tmp = tempfile.mkdtemp(prefix="graft-batch-")
    for name, batch, h, w in CASES:
        model = os.path.join(MODELS, name, "model.onnx")
        if not os.path.exists(model):
            print(f"skip {name}: {model} not generated")
            continue
        ran += 1
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        x = np.random.default_rng(batch * h).standard_normal((batch, 3, h, w)).astype(np.float32)
        expected = sess.run(None, {inp.name: x})
        x_path, out_dir = os.path.join(tmp, f"{name}_{batch}_{h}.pb"), os.path.join(tmp, f"out_{name}_{batch}_{h}")
        write_pb(x_path, x, inp.name)
        proc = subprocess.run([GRAFT, "run", model, "--input", x_path, "--output-dir", out_dir],
                              capture_output=True, text=True)
        if proc.returncode:
            failures += 1
            print(f"FAIL {name} batch {batch} at {h}x{w}: {proc.stderr.strip()}")
            continue
        for i, want in enumerate(expected):
            got = read_pb(os.path.join(out_dir, f"output_{i}.pb"))
            tol = 1e-4 * np.abs(want).max() + 1e-5
            err = np.abs(got - want).max() if got.shape == want.shape else np.inf
            verdict = "PASS" if err <= tol else "FAIL"
            failures += verdict == "FAIL"
            print(f"{verdict} {name} batch {batch} at {h}x{w}, output {i} {got.shape}: "
                  f"max abs diff {err:.3g} (tolerance {tol:.3g})")
    if not ran:
        print("no generated models: run models/onnx/export.py first")
        return 77
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
