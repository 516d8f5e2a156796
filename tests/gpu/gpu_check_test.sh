#!/usr/bin/env bash
# Tests tests/gpu/gpu_check.sh without a GPU: a fake pack whose binaries are shell stubs that
# either say "no CUDA device" (the dry run) or behave like the real ones on a GPU (rows, tables,
# JSON), plus a stub compute-sanitizer. Checks: the dry run passes and validates command lines;
# at most 8 top-level files in $OUT; failed checks, sanitizer errors and NCCL failures set the
# exit status; a step over its cap is cut and reported; result.md and selftest.txt hold what
# finished when the whole run is killed; the budget skips steps it has no room for.
#   bash tests/gpu/gpu_check_test.sh      (also: bazel test //tests/gpu:gpu_check_test)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
script="$here/gpu_check.sh"
[[ -f "$script" ]] || script="$(find "${TEST_SRCDIR:-.}" -path '*tests/gpu/gpu_check.sh' | head -1)"
tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/gpu_check_test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # NAME CONDITION...
  local name="$1"
  shift
  if "$@"; then echo "ok   $name"; else
    echo "FAIL $name"
    fails=$((fails + 1))
  fi
}

# --- the fake pack ---
pack="$tmp/pack"
mkdir -p "$pack/bin" "$pack/lib" "$tmp/path"
echo "commit fake" > "$pack/BUILD_INFO"
cat > "$pack/bin/cuda_selftest" << 'EOF'
#!/usr/bin/env bash
for a in "$@"; do case "$a" in --bogus) echo "usage: cuda_selftest ..."; exit 2 ;; esac; done
[[ "${FAKE_NODEV:-0}" == 1 ]] && { echo "no CUDA device"; exit 3; }
echo "device 0: fake H200"
args=" $* "
if [[ "$args" == *" --shape none "* && "$args" != *" --no-bench "* ]]; then
  for p in fp32 tf32 bf16; do
    echo "[time]  $p gpt2-124m step B8 T1024 (1 stage)  100.000  50.0  81920 tok/s, MFU 40.0% of 989 TFLOP/s"
  done
  exit 0
fi
[[ "$args" == *" --shape none "* ]] && exit 0   # the device probe
n=0
for op in matmul_forward layernorm_forward attention_forward; do
  n=$((n + 1))
  ok=ok
  [[ "${FAKE_FAIL:-0}" == 1 && $op == layernorm_forward ]] && ok=FAIL
  echo "[check] fp32 odd  $op  1.0e-07  1.0e-05  0 $ok   note"
  sleep "${FAKE_SLOW:-0}"
done
[[ "${FAKE_FAIL:-0}" == 1 ]] && exit 1
exit 0
EOF
cat > "$pack/bin/nccl_selftest" << 'EOF'
#!/usr/bin/env bash
[[ "${FAKE_NODEV:-0}" == 1 ]] && { echo "nccl self send/recv: no CUDA device"; exit 3; }
[[ "${FAKE_NCCL_FAIL:-0}" == 1 ]] && { echo "nccl self send/recv of 8 floats: element 3: received 0 but sent 1"; exit 1; }
echo "nccl self send/recv of 8 floats: ok"
EOF
cat > "$pack/bin/find_cuda_libs" << 'EOF'
#!/usr/bin/env bash
[[ "${1:-}" == --ld-path ]] && { echo "${LD_LIBRARY_PATH:-/nonexistent}"; exit 0; }
echo "libcublas.so.13: /fake"
EOF
cat > "$pack/bin/paci" << 'EOF'
#!/usr/bin/env bash
[[ "${FAKE_NODEV:-0}" == 1 ]] && { echo "error: --device cuda: no CUDA device is visible"; exit 1; }
cmd=$1; shift
out="" json=""
while (($#)); do case "$1" in --out) out=$2; shift ;; --json) json=$2; shift ;; esac; shift; done
case $cmd in
  train) echo "step     6/6 | loss 9.1234 | lr 3.00e-04 | 12345 tok/s | MFU 40.1% | ETA 0s" ;;
  calibrate) echo '{}' > "$out" ;;
  compare) cat > "$json" << 'J'
{"measured": {"step_time": 1.0}, "predicted": {"step_time": 1.05},
 "devices": [{"measured_peak_bytes": 1048576000, "predicted_peak_bytes": 1048576000}]}
J
  ;;
esac
EOF
cat > "$tmp/path/compute-sanitizer" << 'EOF'
#!/usr/bin/env bash
while [[ "$1" == --* ]]; do shift; [[ "$1" != --* ]] && [[ "$1" != /* ]] && shift; done
FAKE_SLOW=0 "$@" > /dev/null 2>&1
if [[ "${FAKE_SAN_ERR:-0}" == 1 ]]; then
  echo "========= Invalid __global__ write of size 4 bytes"
  echo "========= ERROR SUMMARY: 1 error"
  exit 9
fi
echo "========= ERROR SUMMARY: 0 errors"
EOF
chmod +x "$pack"/bin/* "$tmp/path/compute-sanitizer"
export PACK="$pack" PATH="$tmp/path:$PATH"

run() {  # OUTDIR ARGS... (env from the caller) -> sets rc
  local o="$1"
  shift
  rm -rf "$o"
  OUT="$o" bash "$script" "$@" > "$o.stdout" 2>&1
  rc=$?
}
nfiles() { find "$1" -mindepth 1 -maxdepth 1 | wc -l; }
has() { grep -q -- "$2" "$1"; }
hasnt() { ! grep -q -- "$2" "$1"; }

# 1. dry run, both parts
FAKE_NODEV=1 run "$tmp/d1" part1 --dry-run
check "dry part1 exits 0" test "$rc" = 0
check "dry part1 <= 8 files" test "$(nfiles "$tmp/d1")" -le 8
check "dry part1 names every step" has "$tmp/d1/result.md" "| bench | dry: command line ok"
check "dry part1 checks the plan" has "$tmp/d1/result.md" "| plan | dry: fits"
FAKE_NODEV=1 run "$tmp/d2" part2 --dry-run
check "dry part2 exits 0" test "$rc" = 0
check "dry part2 compare rows" test "$(grep -c '| compare .* dry: command line ok' "$tmp/d2/result.md")" = 6
FAKE_NODEV=1 SELFTEST_ARGS=--bogus run "$tmp/d3" part1 --dry-run --steps checks
check "dry run catches a bad command line" test "$rc" = 1
check "dry run names it" has "$tmp/d3/result.md" "| checks | dry: FAILED"

run "$tmp/d4" part1 --dry-run
check "dry run on a GPU machine stops after the plan" has "$tmp/d4/result.md" "dry run stopped after the plan checks"
check "dry run on a GPU machine runs no step" hasnt "$tmp/d4/result.md" "| checks |"

# 2. no GPU without --dry-run: exit 3, says so
FAKE_NODEV=1 run "$tmp/n" part1
check "no GPU exits 3" test "$rc" = 3
check "no GPU in result.md" has "$tmp/n/result.md" "no GPU"

# 3. a passing "GPU" run
run "$tmp/g1" part1
check "fake GPU part1 exits 0" test "$rc" = 0
check "fake GPU part1 <= 8 files" test "$(nfiles "$tmp/g1")" -le 8
check "memcheck row" has "$tmp/g1/result.md" "| memcheck bf16 | ok (========= ERROR SUMMARY: 0 errors)"
check "sanitizer summary" has "$tmp/g1/result.md" "- memcheck fp32: exit 0"
check "gpt2-124m rows in result.md" test "$(grep -c 'gpt2-124m step' "$tmp/g1/result.md")" = 3
check "rows in selftest.txt" test "$(grep -c '^\[check\]' "$tmp/g1/selftest.txt")" = 3
check "archive holds the details" bash -c "tar tzf '$tmp/g1/details-part1.tar.gz' | grep -q memcheck_fp32.txt"
run "$tmp/g2" part2
check "fake GPU part2 exits 0" test "$rc" = 0
check "part2 tokens/s" has "$tmp/g2/result.md" "| gpt2-124m 1 stage bf16 (paci train, B=4 T=1024) | 12345 | 40.1% |"
check "part2 compare rows" test "$(grep -c '| +5.0% | 1000 / 1000 |' "$tmp/g2/result.md")" = 6
check "fake GPU part2 <= 8 files" test "$(nfiles "$tmp/g2")" -le 8

# 4. failures count in the exit status
FAKE_FAIL=1 run "$tmp/f1" part1
check "a failed check fails the run" test "$rc" = 1
check "the failed row is quoted" has "$tmp/f1/result.md" "layernorm_forward"
FAKE_SAN_ERR=1 run "$tmp/f2" part1
check "sanitizer errors fail the run" test "$rc" = 1
check "sanitizer summary names the error" has "$tmp/f2/result.md" "Invalid __global__ write"
FAKE_NCCL_FAIL=1 run "$tmp/f3" part1
check "an NCCL failure fails the run" test "$rc" = 1
check "the NCCL row says why" has "$tmp/f3/result.md" "| nccl | FAILED: exit 1"

# 5. a step over its cap is cut, the run goes on, and says so
FAKE_SLOW=3 CAPS=checks=4 run "$tmp/t1" part1
check "timeout fails the run" test "$rc" = 1
check "timeout reported with the rows done" has "$tmp/t1/result.md" "| checks | FAILED: timeout after"
check "steps after the timeout still ran" has "$tmp/t1/result.md" "| bench | ok"

# 6. the whole run killed mid-way: what finished is on disk
rm -rf "$tmp/k"
exec 3>&2 2> /dev/null  # the shell's own "Killed" notice
FAKE_SLOW=20 OUT="$tmp/k" timeout -s KILL 6 bash "$script" part1 > /dev/null 2>&1
exec 2>&3 3>&-
check "killed run: result.md has the finished steps" has "$tmp/k/result.md" "| nccl | ok"
check "killed run: flushed rows" has "$tmp/k/selftest.txt" "matmul_forward"
check "killed run: archive of the finished steps" test -s "$tmp/k/details-part1.tar.gz"
check "killed run: <= 8 files" test "$(nfiles "$tmp/k")" -le 8

# 7. the budget: no room for a required step is a failure, for an optional one not
FAKE_SLOW=3 BUDGET=12 run "$tmp/b1" part1
check "budget skip of required steps fails" test "$rc" = 1
check "budget skip is reported" has "$tmp/b1/result.md" "skipped (budget spent)"
check "a budget that does not fit the plan is reported" has "$tmp/b1/result.md" "| plan | FAILED"

echo
if ((fails)); then
  echo "$fails failed"
  exit 1
fi
echo "all passed"
