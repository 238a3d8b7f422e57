"""A model over 2 GB: its weights in an external data file (the only way ONNX
can hold them, protobuf stops at 2 GB). The 2.4 GB file is sparse, so the test
costs little disk; graft maps it and reads only the rows a Gather asks for,
including rows past the 2 GB and 4 GB marks of 32-bit offsets.

usage: test_big_external.py GRAFT_BINARY
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GRAFT = sys.argv[1]
ROWS, COLS = 2_400_000, 256          # float32: 2.46 GB, rows over 2 GiB start at 2_097_152
PROBES = [0, 7, 2_097_151, 2_097_152, 2_399_999]


def main():
    tmp = tempfile.mkdtemp(prefix="graft-big-")
    data_path = os.path.join(tmp, "weights.bin")
    offset = 4096  # the tensor starts past a header, as external data often does
    with open(data_path, "wb") as f:
        f.truncate(offset + ROWS * COLS * 4)
        for r in PROBES:
            f.seek(offset + r * COLS * 4)
            f.write(np.full(COLS, r + 0.5, np.float32).tobytes())

    init = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[ROWS, COLS],
                       data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "weights.bin"), ("offset", str(offset)), ("length", str(ROWS * COLS * 4))):
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Gather", ["w", "idx"], ["rows"], name="lookup", axis=0)], "big",
                              [helper.make_tensor_value_info("idx", TensorProto.INT64, [len(PROBES)])],
                              [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [len(PROBES), COLS])], [init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model_path = os.path.join(tmp, "model.onnx")
    with open(model_path, "wb") as f:
        f.write(model.SerializeToString())

    idx_path = os.path.join(tmp, "idx.pb")
    with open(idx_path, "wb") as f:
        f.write(numpy_helper.from_array(np.array(PROBES, np.int64), "idx").SerializeToString())
    out = os.path.join(tmp, "out")
    proc = subprocess.run([GRAFT, "run", model_path, "--input", idx_path, "--output-dir", out],
                          capture_output=True, text=True)
    if proc.returncode:
        print(f"FAIL: {proc.stderr.strip()}")
        return 1
    got = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_0.pb")))
    want = np.repeat(np.array(PROBES, np.float32)[:, None] + 0.5, COLS, axis=1)
    ok = got.shape == want.shape and np.array_equal(got, want)
    print(f"{'PASS' if ok else 'FAIL'}: rows {PROBES} of a {ROWS * COLS * 4 / 2**30:.2f} GiB external tensor")
    os.remove(data_path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
