#!/usr/bin/env bash
# Installs, builds and runs every test: the plain build (with a valgrind memcheck
# test), the same suite under AddressSanitizer + UndefinedBehaviorSanitizer, and a
# bounded fuzzing run of every fuzz target. Ends with one line "N passed, M failed,
# K skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

# The six target models and their PyTorch reference outputs (generated, not committed).
if [ ! -f models/onnx/generated/.complete ]; then
  /usr/bin/python3 models/onnx/export.py --model all --form both --out models/onnx/generated &&
    touch models/onnx/generated/.complete
fi
# The same ops at the other opsets the exporters use (VGG16 and AlexNet add no op of their own).
for opset in 11 17; do
  out=models/onnx/generated-opset$opset
  if [ ! -f $out/.complete ]; then
    /usr/bin/python3 models/onnx/export.py --model resnet18 --model resnet50 --model fcn8s --model yolov3 \
      --form both --opset $opset --out $out && touch $out/.complete
  fi
done

passed=0 failed=0 skipped=0
# run_suite NAME BUILD_DIR SETUP_ARGS... : builds and runs meson's tests, adds to the totals.
run_suite() {
  local name=$1 dir=$2; shift 2
  echo "== $name =="
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; failed=$((failed + 1)); return; }
  fi
  if ! ninja -C "$dir"; then failed=$((failed + 1)); return; fi
  meson test -C "$dir" --print-errorlogs --num-processes 1
  local log="$dir/meson-logs/testlog.json"
  passed=$((passed + $(grep -c '"result": "OK"' "$log")))
  failed=$((failed + $(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")))
  skipped=$((skipped + $(grep -c '"result": "SKIP"' "$log")))
}

run_suite plain build
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_suite "asan+ubsan" build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized \
    -Dcuda=disabled

# Each fuzz target (tests/fuzz) for GRAFT_FUZZ_SECONDS (default 20), from seeds made
# by tests/fuzz/make_seeds.py; a finding fails the run and is left in build-fuzz/artifacts.
echo "== fuzz (every target, bounded) =="
fuzz_targets="loader model_file session image tensor_pb checkpoint dataset"
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized -Dcuda=disabled >build-fuzz.setup.log 2>&1 || cat build-fuzz.setup.log
fi
if ninja -C build-fuzz $(for t in $fuzz_targets; do echo tests/fuzz_$t; done); then
  seeds=$(mktemp -d)
  /usr/bin/python3 tests/fuzz/make_seeds.py "$seeds" --graft build/tools/graft >/dev/null
  mkdir -p build-fuzz/artifacts
  for t in $fuzz_targets; do
    corpus=$(mktemp -d)
    if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        build-fuzz/tests/fuzz_$t -max_total_time="${GRAFT_FUZZ_SECONDS:-20}" -timeout=30 -malloc_limit_mb=65536 \
        -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/$t- "$corpus" "$seeds/$t" \
        2>build-fuzz/fuzz-$t.log; then
      echo "fuzz_$t: $(grep -E "stat::number_of_executed_units" build-fuzz/fuzz-$t.log | awk '{print $2}') runs," \
        "$(ls "$corpus" | wc -l) new inputs, no finding"
      passed=$((passed + 1))
    else
      echo "fuzz_$t: FINDING"; tail -60 build-fuzz/fuzz-$t.log
      failed=$((failed + 1))
    fi
    rm -rf "$corpus"
  done
  rm -rf "$seeds"
else
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
