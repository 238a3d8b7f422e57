#!/bin/sh
# Valgrind memcheck over what a user does with a model: load and describe it (info),
# run it (run), train it a step with Adam, checkpoint and export it (train), resume
# from the checkpoint (train --resume), run the export. No memcheck error and no
# block "definitely lost" is allowed; exits 77 (skipped) when valgrind is missing.
#
#   test_valgrind.sh GRAFT_EXE SOURCE_ROOT
set -u
graft=$1 root=$2
command -v valgrind >/dev/null || { echo "valgrind is not installed: skipped"; exit 77; }
tiny=$root/models/onnx/tiny_cnn/tiny_cnn/model.onnx
tiny_bn=$root/models/onnx/tiny_cnn/tiny_cnn_bn/model.onnx
data=$root/models/onnx/tiny_cnn/tiny_cnn/test_data_set_0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Training data: the reference input repeated along its first axis, and labels.
/usr/bin/python3 - "$data/input_0.pb" "$tmp" <<'PY' || exit 1
import sys, numpy as np
from onnx import TensorProto, numpy_helper
t = TensorProto(); t.ParseFromString(open(sys.argv[1], "rb").read())
x = numpy_helper.to_array(t)
x = np.concatenate([x] * (8 // x.shape[0]))
open(sys.argv[2] + "/x.pb", "wb").write(numpy_helper.from_array(x.astype(np.float32), "x").SerializeToString())
y = (np.arange(x.shape[0]) % 10).astype(np.int64)
open(sys.argv[2] + "/y.pb", "wb").write(numpy_helper.from_array(y, "y").SerializeToString())
PY
failed=0
# check WHAT EXPECTED_EXIT GRAFT_ARGS...: memcheck's own errors exit 99
check() {
  what=$1 want=$2; shift 2
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --log-file="$tmp/vg.log" "$graft" "$@" >"$tmp/out.log" 2>&1
  rc=$?
  if [ $rc -ne "$want" ] || grep -q "definitely lost" "$tmp/vg.log"; then
    echo "FAIL $what (exit $rc)"; cat "$tmp/out.log"; cat "$tmp/vg.log"; failed=$((failed + 1))
  else
    echo "ok   $what (exit $rc): no memcheck error, nothing definitely lost"
  fi
}
check "info" 0 info "$tiny"
check "run" 0 run "$tiny" --input "$data/input_0.pb" --output-dir "$tmp/run"
check "train a step, checkpoint, export" 0 train "$tiny_bn" --inputs "$tmp/x.pb" --labels "$tmp/y.pb" --steps 1 \
  --batch 4 --optim adam --checkpoint "$tmp/ck.onnx" --out "$tmp/trained.onnx" --quiet
check "resume from the checkpoint" 0 train "$tiny_bn" --inputs "$tmp/x.pb" --labels "$tmp/y.pb" --steps 2 \
  --batch 4 --optim adam --resume "$tmp/ck.onnx" --out "$tmp/trained2.onnx" --quiet
check "run the export" 0 run "$tmp/trained.onnx" --input "$data/input_0.pb" --output-dir "$tmp/run2"
# the error paths free what they took, too
check "a model that cannot be planned" 1 info "$root/tests/fuzz/regressions/loader/upsample-without-inputs.onnx"
check "a model nested too deep" 1 info "$root/tests/fuzz/regressions/loader/types-nested-10000-deep.onnx"
check "resuming from a file that is no checkpoint" 1 train "$tiny_bn" --inputs "$tmp/x.pb" --labels "$tmp/y.pb" \
  --steps 2 --batch 4 --optim adam --resume "$tiny_bn" --quiet
[ $failed -eq 0 ]
