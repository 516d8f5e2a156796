#!/usr/bin/env bash
# The GPU check for a lent machine (one call, <= 6 minutes: memcheck 2 x <= 75 s, self-test
# <= 200 s; expected ~2 minutes in all). Prepare here with
# tests/gpu/pack.sh, then run through the device tool from the repository root:
#   run(command="bash tests/gpu/gpu_check.sh", carry=["out/cuda_pack"], timeout_s=420)
# It locates cuBLAS/cuBLASLt/NCCL on the machine, sets LD_LIBRARY_PATH, runs a memcheck pass
# of the self-test on the small shape (compute-sanitizer, if present), then the full self-test
# (every backend op vs the CPU backend in fp32/tf32/bf16, model parity, 2-stage = 1-stage
# bitwise, timings + gpt2-124m step MFU), writes logs under $OUT and prints the table last.
# Environment: PACK (default out/cuda_pack), SANITIZE=0 to skip memcheck, SELFTEST_ARGS.
set -uo pipefail
cd "$(dirname "$0")/../.." 2>/dev/null || true
PACK="${PACK:-out/cuda_pack}"
PACK="$(cd "$PACK" 2>/dev/null && pwd || echo "$PACK")"
OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
log="$OUT/gpu_check.log"
: > "$log"
say() { echo "$@" | tee -a "$log"; }

say "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
[[ -f "$PACK/BUILD_INFO" ]] && cat "$PACK/BUILD_INFO" | tee -a "$log"
if [[ ! -x "$PACK/bin/cuda_selftest" ]]; then
  say "missing $PACK/bin/cuda_selftest: run tests/gpu/pack.sh here and carry $PACK"
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,temperature.gpu \
  --format=csv,noheader > "$OUT/nvidia-smi.txt" 2>&1 || true
say "gpu: $(cat "$OUT/nvidia-smi.txt")"

# --- libraries: carried small ones first, then the machine's cuBLAS/NCCL ---
export LD_LIBRARY_PATH="$PACK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldpath=$("$PACK/bin/find_cuda_libs" --ld-path); then
  export LD_LIBRARY_PATH="$ldpath"
else
  say "find_cuda_libs missed some libraries; searching the file system"
  extra=$(timeout 60 find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
            \( -name 'libcublasLt.so.13*' -o -name 'libcublas.so.13*' -o -name 'libnccl.so.2*' \) \
            -print 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ' ')
  say "found in: $extra"
  # shellcheck disable=SC2086
  export LD_LIBRARY_PATH="$("$PACK/bin/find_cuda_libs" --ld-path $extra || true)"
fi
"$PACK/bin/find_cuda_libs" | tee -a "$log"
ldd "$PACK/bin/cuda_selftest" > "$OUT/ldd.txt" 2>&1
if grep -q "not found" "$OUT/ldd.txt"; then
  say "unresolved libraries:"; grep "not found" "$OUT/ldd.txt" | tee -a "$log"
fi

# --- memcheck on the small shape (catches out-of-bounds accesses the comparisons might miss) ---
san=$(command -v compute-sanitizer 2>/dev/null || true)
for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [[ -z "$san" && -x "$c" ]] && san="$c"
done
if [[ "${SANITIZE:-1}" != 0 && -n "$san" ]]; then
  say "== compute-sanitizer memcheck (fp32+bf16, odd shape, no model/bench)"
  for p in fp32 bf16; do
    timeout 75 "$san" --tool memcheck --leak-check no --error-exitcode 9 \
      "$PACK/bin/cuda_selftest" --precision $p --shape odd --no-model --no-green --no-bench \
      > "$OUT/memcheck_$p.txt" 2>&1
    rc=$?
    say "memcheck $p: exit $rc ($(grep -c 'Invalid\|ERROR SUMMARY: [1-9]' "$OUT/memcheck_$p.txt") error lines)"
  done
fi

# --- NCCL: a 1-rank communicator's self send/receive (the NCCL transport's calls) ---
if [[ -x "$PACK/bin/nccl_selftest" ]]; then
  timeout 60 "$PACK/bin/nccl_selftest" > "$OUT/nccl.txt" 2>&1
  say "== nccl_selftest exit $? : $(tail -1 "$OUT/nccl.txt")"
fi

# --- the self-test ---
say "== cuda_selftest ${SELFTEST_ARGS:-}"
# shellcheck disable=SC2086
timeout 200 "$PACK/bin/cuda_selftest" ${SELFTEST_ARGS:-} > "$OUT/selftest.txt" 2> "$OUT/selftest.err"
rc=$?
tail -3 "$OUT/selftest.err" >> "$log"
say "== cuda_selftest exit $rc (0 pass, 1 check failed, 2 error, 3 no device, 124 timeout)"
# --- the executor on the GPU: paci train / compare --device cuda ---
# gpt2-124m single stage in fp32 and bf16 (tokens/s, MFU), then 4 stages on one GPU for gpipe,
# 1f1b and paci, without and with SM partitioning, predicted (calibrated on separate runs)
# vs measured step time. Each run is short; the whole section is capped at 150 s.
exec_table="$OUT/executor.md"
if [[ -x "$PACK/bin/paci" && $rc -ne 3 ]]; then
  P="$PACK/bin/paci"
  small=(--model gpt2-124m --seq 1024 --batch 4 --data synthetic --vocab 50257)
  {
    echo "| run | tokens/s | MFU |"
    echo "|---|---|---|"
    for prec in fp32 bf16; do
      timeout 60 "$P" train --device cuda --precision $prec --stages 1 --microbatches 2 --steps 6 "${small[@]}" \
        > "$OUT/train_$prec.txt" 2>&1
      line=$(grep -E "^step +6/6" "$OUT/train_$prec.txt" | tail -1)
      echo "| gpt2-124m 1 stage $prec | $(sed -E 's/.*\| ([0-9]+) tok\/s.*/\1/' <<< "$line") | $(sed -E 's/.*MFU ([0-9.]+%).*/\1/' <<< "$line") |"
    done
  } > "$exec_table" 2>>"$log"
  timeout 40 "$P" calibrate --device cuda --precision bf16 --model gpt2-124m --layers 12 --seq 1024 --batch 2 \
    --out "$OUT/cal.json" > "$OUT/calibrate.txt" 2>&1
  {
    echo
    echo "| 4 stages on one GPU (bf16) | SM partition | measured step (s) | predicted (s) | error |"
    echo "|---|---|---|---|---|"
    for part in off equal; do
      for sched in gpipe 1f1b paci; do
        timeout 30 "$P" compare --device cuda --precision bf16 --sm-partition $part --schedule $sched --stages 4 \
          --microbatches 8 --steps 4 --model gpt2-124m --seq 1024 --batch 2 --calibration "$OUT/cal.json" \
          --json "$OUT/compare_${sched}_$part.json" > "$OUT/compare_${sched}_$part.txt" 2>&1
        python3 - "$OUT/compare_${sched}_$part.json" "$sched" "$part" <<'PY' || echo "| $sched | $part | failed | | |"
import json, sys
c = json.load(open(sys.argv[1]))
m, p = c["measured"]["step_time"], c["predicted"]["step_time"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {m:.4f} | {p:.4f} | {100 * (p - m) / m:+.1f}% |")
PY
      done
    done
  } >> "$exec_table" 2>>"$log"
  say "== executor on the GPU:"
  cat "$exec_table" | tee -a "$log"
fi

# One file ready to land in bench/results/: date, card, build, then the self-test output.
{
  echo "# CUDA backend self-test, $(date -u +%Y-%m-%d)"
  echo
  echo "card: $(cat "$OUT/nvidia-smi.txt")"
  [[ -f "$PACK/BUILD_INFO" ]] && sed 's/^/build: /' "$PACK/BUILD_INFO"
  echo "cuda_selftest exit: $rc"
  [[ -f "$OUT/nccl.txt" ]] && echo "nccl: $(tail -1 "$OUT/nccl.txt")"
  echo
  echo '```'
  cat "$OUT/selftest.txt"
  echo '```'
  [[ -f "$exec_table" ]] && { echo; cat "$exec_table"; }
} > "$OUT/result.md"
echo
cat "$OUT/selftest.txt"
[[ -f "$exec_table" ]] && cat "$exec_table"
exit $rc
