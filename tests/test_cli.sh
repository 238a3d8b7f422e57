#!/usr/bin/env bash
# The graft command line: --version and help, every command's --help, usage
# mistakes (exit 2), bad files (exit 1, a message naming the file), and the
# three commands on small models. No timings are checked.
#
# usage: tests/test_cli.sh GRAFT [SOURCE_ROOT] [TESTDATA]
#   GRAFT        the built tool (build/tools/graft)
#   SOURCE_ROOT  the repository (for models/onnx/tiny_cnn; default: this script's ..)
#   TESTDATA     the ONNX test data (default /usr/share/libonnx-testdata/data)
set -u

graft=$1
root=${2:-$(cd "$(dirname "$0")/.." && pwd)}
testdata=${3:-/usr/share/libonnx-testdata/data}
tiny=$root/models/onnx/tiny_cnn/tiny_cnn
add=$testdata/node/test_add

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
out=$tmp/stdout
err=$tmp/stderr

fail() {
    echo "FAIL: $*" >&2
    echo "  stdout: $(head -c 600 "$out")" >&2
    echo "  stderr: $(head -c 600 "$err")" >&2
    failures=$((failures + 1))
}

# expect RC TEXT -- ARGS...: runs graft ARGS, wants exit status RC and TEXT in
# its output (stdout for status 0, stderr otherwise; empty TEXT: anything).
expect() {
    local rc=$1 text=$2
    shift 3
    "$graft" "$@" >"$out" 2>"$err"
    local got=$?
    local where=$out
    [ "$rc" = 0 ] || where=$err
    if [ "$got" != "$rc" ]; then
        fail "graft $* exited $got, expected $rc"
    elif [ -n "$text" ] && ! grep -qF -- "$text" "$where"; then
        fail "graft $*: '$text' not in its $( [ "$rc" = 0 ] && echo stdout || echo stderr)"
    fi
}

# ---- version and help
expect 0 "graft 0.1.0" -- --version
expect 0 "backends: cpu" -- --version
expect 0 "commands:" -- help
expect 0 "commands:" -- --help
expect 2 "usage: graft" --
expect 2 "unknown command 'frobnicate'" -- frobnicate
for cmd in info run bench; do
    expect 0 "usage: graft $cmd MODEL" -- "$cmd" --help
    expect 0 "usage: graft $cmd MODEL" -- help "$cmd"
    expect 2 "which model?" -- "$cmd"
    expect 2 "unknown option '--bogus'" -- "$cmd" "$tiny/model.onnx" --bogus
done

# ---- usage mistakes: exit 2 before touching any file
expect 2 "--batch wants a whole number" -- info "$tiny/model.onnx" --batch 0
expect 2 "--batch needs a value" -- info "$tiny/model.onnx" --batch
expect 2 "--size wants HEIGHTxWIDTH" -- info "$tiny/model.onnx" --size 3x
expect 2 "one model at a time" -- info a.onnx b.onnx
expect 2 "give either --input files or --image files" -- run "$tiny/model.onnx"
expect 2 "give either --input files or --image files" -- run "$tiny/model.onnx" --input x.pb --image y.png
expect 2 "--input needs --output-dir" -- run "$tiny/model.onnx" --input x.pb
expect 2 "--top wants a whole number" -- run "$tiny/model.onnx" --image y.png --top five
expect 2 "--mean wants 3 comma-separated numbers" -- run "$tiny/model.onnx" --image y.png --mean 0.5,0.5
expect 2 "--std must not contain 0" -- run "$tiny/model.onnx" --image y.png --std 1,0,1
expect 2 "--runs wants a whole number" -- bench "$tiny/model.onnx" --runs 0
for cmd in run bench train eval; do
    expect 2 "device 'gpu': expected cpu, cuda or cuda:N" -- "$cmd" "$tiny/model.onnx" --device gpu
done

# ---- bad files: exit 1, and the message names the file
printf 'not a model\n' >"$tmp/text.onnx"
expect 1 "graft: $tmp/missing.onnx" -- info "$tmp/missing.onnx"
expect 1 "graft: $tmp/text.onnx" -- info "$tmp/text.onnx"
expect 1 "$tmp/missing.onnx" -- run "$tmp/missing.onnx" --input x.pb --output-dir "$tmp/o"
expect 1 "$tmp/missing.onnx" -- bench "$tmp/missing.onnx"
# a device that is not there (no GPU, a CPU-only build, or past the last GPU): exit 1, saying why
expect 1 "CUDA" -- bench "$tiny/model.onnx" --runs 1 --device cuda:4095
expect 0 "median" -- bench "$tiny/model.onnx" --runs 1 --warmup 0 --device cpu
# --devices (data parallel): a list of CUDA devices, on a data set; checked before any file is read
expect 2 "--devices lists CUDA devices (cuda:N), not 'cpu'" -- train "$tiny/model.onnx" --data "$tmp" --devices cuda:0,cpu
expect 2 "--devices names cuda:1 twice" -- train "$tiny/model.onnx" --data "$tmp" --devices cuda:1,cuda:1
expect 2 "--device or --devices, not both" -- train "$tiny/model.onnx" --data "$tmp" --device cuda --devices cuda:0
expect 2 "--devices (data parallel) trains on a data set" -- \
    train "$tiny/model.onnx" --inputs x.pb --labels y.pb --devices cuda:0,cuda:1
expect 1 "CUDA" -- train "$tiny/model.onnx" --data "$tmp" --devices cuda:0,cuda:4095
expect 1 "$tmp/missing.pb" -- run "$tiny/model.onnx" --input "$tmp/missing.pb" --output-dir "$tmp/o"
expect 1 "$tmp/text.onnx" -- run "$tiny/model.onnx" --input "$tmp/text.onnx" --output-dir "$tmp/o"
expect 1 "takes 1 input ('input'), but 2 --input files were given" -- \
    run "$tiny/model.onnx" --input "$tiny/test_data_set_0/input_0.pb" \
    --input "$tiny/test_data_set_0/input_0.pb" --output-dir "$tmp/o"

# An 8x8 RGB PNG, whole and cut short.
echo 'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAANUlEQVR4nGNkYOXixwZYKioqsEowfvj6C7tERm4RdokHT19hl4iITcIuceHqLewSHr5BWCUA+DAWrZ28LtsAAAAASUVORK5CYII=' |
    base64 -d >"$tmp/small.png"
head -c 60 "$tmp/small.png" >"$tmp/truncated.png"
expect 1 "$tmp/missing.jpg" -- run "$tiny/model.onnx" --image "$tmp/missing.jpg"
expect 1 "$tmp/truncated.png: broken PNG" -- run "$tiny/model.onnx" --image "$tmp/truncated.png"
expect 1 "$tmp/text.onnx: not a JPEG or PNG image" -- run "$tiny/model.onnx" --image "$tmp/text.onnx"
expect 1 "$tmp/missing.txt" -- run "$tiny/model.onnx" --image "$tmp/small.png" --labels "$tmp/missing.txt"

# ---- the commands on small models
expect 0 "[batch,3,height,width]" -- info "$tiny/model.onnx"
expect 0 "at batch 4:" -- info "$tiny/model.onnx" --batch 4 --size 32x48
expect 0 '"parameters":' -- info "$tiny/model.onnx" --json
expect 0 "output_0.pb" -- run "$tiny/model.onnx" --input "$tiny/test_data_set_0/input_0.pb" --output-dir "$tmp/tiny"
[ -s "$tmp/tiny/output_0.pb" ] || fail "run --input wrote no $tmp/tiny/output_0.pb"
expect 0 '"name": "sum"' -- run "$add/model.onnx" --input "$add/test_data_set_0/input_0.pb" \
    --input "$add/test_data_set_0/input_1.pb" --output-dir "$tmp/add" --json
for i in 0 1 2; do echo "class $i"; done >"$tmp/labels.txt"
expect 0 "class " -- run "$tiny/model.onnx" --image "$tmp/small.png" --image "$tmp/small.png" --top 3 \
    --labels "$tmp/labels.txt" --size 32 --resize 36
expect 0 '"top": [' -- run "$tiny/model.onnx" --image "$tmp/small.png" --top 2 --json
expect 0 '"median_ms":' -- bench "$tiny/model.onnx" --batch 2 --size 32 --warmup 1 --runs 3 --json
expect 0 "images_per_s" -- bench "$tiny/model.onnx" --runs 2 --json --profile
expect 0 "Conv" -- bench "$tiny/model.onnx" --runs 2 --profile

# The numbers and names, where Python can read the files: outputs equal the
# reference data, and each output is named after its graph output.
if python3 -c 'import onnx, numpy' 2>/dev/null; then
    python3 - "$tiny" "$tmp/tiny" "$add" "$tmp/add" <<'EOF' || fail "run --input outputs differ from the reference"
import sys
import numpy as np
import onnx
from onnx import numpy_helper

ok = True
for case, got_dir in [(sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])]:
    graph = onnx.load(f"{case}/model.onnx").graph
    for i, output in enumerate(graph.output):
        got, want = onnx.TensorProto(), onnx.TensorProto()
        got.ParseFromString(open(f"{got_dir}/output_{i}.pb", "rb").read())
        want.ParseFromString(open(f"{case}/test_data_set_0/output_{i}.pb", "rb").read())
        a, b = numpy_helper.to_array(got), numpy_helper.to_array(want)
        if got.name != output.name or a.shape != b.shape or not np.allclose(a, b, rtol=1e-3, atol=1e-5):
            print(f"{got_dir}/output_{i}.pb: name {got.name!r} shape {a.shape}, expected {output.name!r} {b.shape}")
            ok = False
sys.exit(0 if ok else 1)
EOF
    # --json output parses as JSON.
    "$graft" info "$tiny/model.onnx" --json | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["gflops"] > 0' ||
        fail "info --json is not JSON with gflops"
    "$graft" run "$tiny/model.onnx" --image "$tmp/small.png" --top 3 --json |
        python3 -c 'import json, sys; d = json.load(sys.stdin); assert len(d["images"][0]["top"]) == 3' ||
        fail "run --image --json is not JSON with 3 classes"
fi

if [ "$failures" != 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "cli: all checks passed"
