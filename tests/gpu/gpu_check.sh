#!/usr/bin/env bash
# The GPU check for a lent machine, in two device calls (each part has a wall-clock budget and
# every step in it its own timeout, cut to what the budget has left):
#
#   part1 (budget 270 s): correctness first, then the single-stage figures and NCCL:
#     env        nvidia-smi, the machine's cuBLAS/cuBLASLt/NCCL (find_cuda_libs, find / fallback)
#     memcheck   compute-sanitizer memcheck of cuda_selftest on the small odd shape, fp32 + bf16
#     nccl       a 1-rank communicator's self send/receive (+ the split the transport makes)
#     checks     cuda_selftest --no-bench: every backend op vs the CPU backend in fp32/tf32/bf16
#                (stated thresholds, poisoned outputs), model parity, 2-stage = 1-stage, green ctx
#     bench      cuda_selftest bench only: per-op timings and the gpt2-124m single-stage step,
#                tokens/s and MFU in fp32, tf32 and bf16
#   part2 (budget 170 s, optional): the executor on the GPU (paci):
#     train-bf16 gpt2-124m 1 stage, bf16, tokens/s + MFU through the runtime
#     calibrate  bf16 calibration for the compare runs (separate runs)
#     compare    4 stages on one GPU: gpipe, 1f1b, paci x --sm-partition off / equal:
#                predicted vs measured step time and peak memory
#     train-fp32, train-tf32   the same as train-bf16, if the budget has room left
#
# Prepare here: tests/gpu/pack.sh (builds -c opt --config=cuda, fills out/cuda_pack), then
#   bash tests/gpu/gpu_check.sh --dry-run        # validates everything that runs without a GPU
# Device commands (from the repository root). 15 minutes (900 s) of device time in all, every
# start, idle wait and call included; a start takes a minute or two. Call part2 right after
# part1 (the machine is still warm): ~90 s start + 300 + 200 = ~590 s, which leaves ~300 s for
# one rerun of either part (or of chosen steps), then give_back:
#   run(command="bash tests/gpu/gpu_check.sh part1", carry=["out/cuda_pack"], timeout_s=300)
#   run(command="bash tests/gpu/gpu_check.sh part2", carry=["out/cuda_pack"], timeout_s=200)
#   rerun of chosen steps, e.g.:
#   run(command="bash tests/gpu/gpu_check.sh part1 --steps checks,bench", carry=["out/cuda_pack"], timeout_s=200)
#
# What comes back ($OUT, at most 8 top-level files; the device tool returns 8):
#   result.md             appended (and flushed) after every step: a killed run still returns
#                         what finished; the step table, sanitizer summary, tables
#   selftest.txt          cuda_selftest's rows as they come (part1), or the executor table (part2)
#   gpu_check-<part>.log  the log
#   details-<part>.tar.gz every other output (memcheck logs, ldd, train/compare outputs, json),
#                         rebuilt after every step
# Exit status: 0 every step passed; 1 a step failed (sanitizer errors, NCCL, a failed check, a
# timeout: all count); 2 the pack is missing; 3 no GPU.
# Environment: PACK (default out/cuda_pack), OUT, BUDGET (seconds, overrides the part's),
# CAPS (per-step caps, e.g. CAPS=checks=200,bench=80), SELFTEST_ARGS (extra cuda_selftest
# arguments). Tested without a GPU by tests/gpu/gpu_check_test.sh (stub binaries).
set -uo pipefail
cd "$(dirname "$0")/../.." 2>/dev/null || true
ROOT="$PWD"

part=part1
dry=0
only=""
while (($#)); do
  case "$1" in
    part1 | part2) part="$1" ;;
    --dry-run) dry=1 ;;
    --steps) only="${2:-}"; shift ;;
    -h | --help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "usage: gpu_check.sh [part1|part2] [--dry-run] [--steps a,b]" >&2; exit 2 ;;
  esac
  shift
done

declare -A PART_BUDGET=([part1]=270 [part2]=170)
declare -A PART_DEVICE_TIMEOUT=([part1]=300 [part2]=200)
# Step caps (seconds). The required steps of a part must fit its budget (checked by --dry-run);
# optional ones run only if the budget has room left, and a skip of them is no failure.
declare -A CAP=([memcheck]=30 [nccl]=20 [checks]=120 [bench]=50
  [train]=25 [calibrate]=30 [compare]=15)
# CAPS="checks=200,bench=80" overrides caps (a rerun with more time, or the script's own test).
IFS=',' read -r -a cap_over <<< "${CAPS:-}"
for kv in "${cap_over[@]}"; do [[ "$kv" == *=* ]] && CAP[${kv%%=*}]=${kv#*=}; done
REQUIRED_part1=$((2 * CAP[memcheck] + CAP[nccl] + CAP[checks] + CAP[bench]))
REQUIRED_part2=$((CAP[train] + CAP[calibrate] + 6 * CAP[compare]))
OPTIONAL_STEPS=",train-fp32,train-tf32,"
budget="${BUDGET:-${PART_BUDGET[$part]}}"
max_top_files=8

PACK="${PACK:-out/cuda_pack}"
PACK="$(cd "$PACK" 2>/dev/null && pwd || echo "$PACK")"
OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_${part}.XXXXXX")"
log="$OUT/gpu_check-$part.log"
result="$OUT/result.md"
table="$OUT/selftest.txt"
archive="$OUT/details-$part.tar.gz"
: > "$log"
start_s=$SECONDS
rc_all=0
say() { echo "$@" | tee -a "$log"; }
md() { printf '%s\n' "$@" >> "$result"; }  # one write per call: on disk at once
elapsed() { echo $((SECONDS - start_s)); }
pack_details() { tar -czf "$archive.tmp" -C "$WORK" . 2>/dev/null && mv -f "$archive.tmp" "$archive"; }

# --- the step runner: every step has a cap, cut to the part's remaining budget ---
# run_step NAME CAP OUTFILE CMD...   -> sets step_rc (124 = timeout, 125 = skipped for budget)
want_step() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }
run_step() {
  local name="$1" cap="$2" outfile="$3"
  shift 3
  local left=$((budget - $(elapsed) - 5))
  local t=$cap
  ((left < t)) && t=$left
  if ((left < 5)); then
    step_rc=125
    say "== $name: skipped (budget of ${budget}s spent)"
    md "| $name | skipped (budget spent) | 0 s | cap ${cap} s |"
    [[ "$OPTIONAL_STEPS" == *",$name,"* ]] || rc_all=1
    pack_details
    return
  fi
  say "== $name (timeout ${t}s, at $(elapsed)s of ${budget}s)"
  local t0=$SECONDS
  timeout -k 5 "$t" "$@" > "$outfile" 2>&1
  step_rc=$?
  local took=$((SECONDS - t0))
  say "== $name: exit $step_rc after ${took}s"
  STEP_LAST_TOOK=$took
  STEP_LAST_CAP=$t
}
# record NAME VERDICT  (after run_step; VERDICT "ok" or why not)
record() {
  local name="$1" verdict="$2"
  md "| $name | $verdict | ${STEP_LAST_TOOK:-0} s | timeout ${STEP_LAST_CAP:-0} s |"
  [[ "$verdict" == *FAILED* ]] && rc_all=1
  pack_details
}

# --- header ---
{
  echo "# GPU check $part, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  [[ $dry == 1 ]] && echo "**dry run** (no GPU used: every step's command line and parsing checked)" && echo
  [[ -f "$PACK/BUILD_INFO" ]] && sed 's/^/    /' "$PACK/BUILD_INFO"
  echo
} > "$result"
say "== gpu_check $part $( ((dry)) && echo '(dry run) ')$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), budget ${budget}s"
[[ -f "$PACK/BUILD_INFO" ]] && tee -a "$log" < "$PACK/BUILD_INFO"
for b in cuda_selftest find_cuda_libs nccl_selftest paci; do
  if [[ ! -x "$PACK/bin/$b" ]]; then
    say "missing $PACK/bin/$b: run tests/gpu/pack.sh here and carry $PACK"
    md "missing $PACK/bin/$b: run tests/gpu/pack.sh and carry out/cuda_pack"
    exit 2
  fi
done

# --- environment: libraries, card ---
export LD_LIBRARY_PATH="$PACK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
gpu_name=""
if command -v nvidia-smi > /dev/null 2>&1; then
  gpu_name=$(timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,temperature.gpu \
    --format=csv,noheader 2>&1 | head -4)
fi
say "gpu: ${gpu_name:-none visible}"
if ldpath=$("$PACK/bin/find_cuda_libs" --ld-path 2> "$WORK/find_cuda_libs.err"); then
  export LD_LIBRARY_PATH="$ldpath"
elif ((dry == 0)); then
  say "find_cuda_libs missed some libraries; searching the file system (30 s at most)"
  extra=$(timeout 30 find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
    \( -name 'libcublasLt.so.13*' -o -name 'libcublas.so.13*' -o -name 'libnccl.so.2*' \) \
    -print 2> /dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ' ')
  say "found in: $extra"
  # shellcheck disable=SC2086
  export LD_LIBRARY_PATH="$("$PACK/bin/find_cuda_libs" --ld-path $extra || echo "$LD_LIBRARY_PATH")"
fi
"$PACK/bin/find_cuda_libs" >> "$log" 2>&1 || true
ldd "$PACK/bin/cuda_selftest" > "$WORK/ldd.txt" 2>&1
ldd "$PACK/bin/paci" >> "$WORK/ldd.txt" 2>&1
unresolved=$(grep "not found" "$WORK/ldd.txt" | sort -u | tr -s ' \t' ' ')
[[ -n "$unresolved" ]] && say "unresolved libraries: $unresolved"
{
  echo "card: ${gpu_name:-none visible}"
  echo
  echo "| step | verdict | took | limit |"
  echo "|---|---|---|---|"
} >> "$result"

# No GPU: a real run stops here (exit 3); a dry run goes on, expecting "no CUDA device" from
# every binary (which proves each command line parses: flags are checked before the device).
probe=$(timeout 30 "$PACK/bin/cuda_selftest" --precision fp32 --no-model --no-green --no-bench --shape none 2>&1 | head -3)
if [[ "$probe" == *"no CUDA device"* ]]; then
  if ((dry == 0)); then
    say "no GPU: cuda_selftest says '$probe'"
    md "" "**no GPU** on this machine: nothing ran (cuda_selftest: $probe)"
    pack_details
    exit 3
  fi
  say "no GPU (expected in a dry run): checking every step's command line"
elif ((dry)); then
  gpu_in_dry=1  # the steps would run for real: stop after the plan checks below
fi

# The plan: required steps fit the budget, the budget fits the device call's timeout.
req_var="REQUIRED_$part"
plan="required steps ${!req_var} s of a ${budget} s budget; device timeout_s ${PART_DEVICE_TIMEOUT[$part]}"
say "plan: $plan"
if ((${!req_var} > budget || budget + 20 > PART_DEVICE_TIMEOUT[$part])); then
  say "ERROR: the plan does not fit ($plan)"
  md "| plan | FAILED: $plan | 0 s | - |"
  rc_all=1
elif ((dry)); then
  md "| plan | dry: fits ($plan) | 0 s | - |"
fi
if ((dry)) && [[ -f "$PACK/BUILD_INFO" ]] && [[ -x tests/gpu/pack.sh ]]; then
  # Is the pack built from the tree as it is now? (pack.sh records a hash of the sources.)
  now=$(bash tests/gpu/pack.sh --sources-hash 2> /dev/null)
  was=$(sed -n 's/^sources //p' "$PACK/BUILD_INFO")
  if [[ -n "$now" && "$now" == "$was" ]]; then
    md "| pack | dry: built from the current sources ($now) | 0 s | - |"
  else
    say "WARNING: $PACK is stale (sources ${now:-?}, pack ${was:-?}): rerun tests/gpu/pack.sh"
    md "| pack | dry: WARNING: stale (the tree changed since tests/gpu/pack.sh): repack before the device call | 0 s | - |"
  fi
fi

if [[ -n "${gpu_in_dry:-}" ]]; then
  say "a GPU is visible: the dry run stops after the plan checks (run part1/part2 for real)"
  md "" "a GPU is visible: the dry run stopped after the plan checks"
  pack_details
  exit $rc_all
fi

# In a dry run a step passes when its binary got as far as looking for the device.
nodev_re='no CUDA device'
dry_verdict() {  # FILE -> verdict
  if grep -q "$nodev_re" "$1"; then echo "dry: command line ok (stopped at 'no CUDA device')"; else
    echo "dry: FAILED ($(grep -v '^$' "$1" | tail -1 | cut -c1-120))"
  fi
}

S="$PACK/bin/cuda_selftest"
P="$PACK/bin/paci"

# ================================ part 1 ================================
if [[ $part == part1 ]]; then
  # --- memcheck on the small shape (out-of-bounds accesses the comparisons might miss) ---
  san=$(command -v compute-sanitizer 2> /dev/null || true)
  for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
    /usr/local/cuda-13.0/bin/compute-sanitizer; do
    [[ -z "$san" && -x "$c" ]] && san="$c"
  done
  san_summary=()
  if want_step memcheck; then
    for p in fp32 bf16; do
      f="$WORK/memcheck_$p.txt"
      if ((dry)); then
        STEP_LAST_TOOK=0 STEP_LAST_CAP=${CAP[memcheck]}
        "$S" --precision $p --shape odd --no-model --no-green --no-bench > "$f" 2>&1
        record "memcheck $p" "$(dry_verdict "$f")$([[ -z "$san" ]] && echo '; compute-sanitizer not on this machine')"
        continue
      fi
      if [[ -z "$san" ]]; then
        STEP_LAST_TOOK=0 STEP_LAST_CAP=0
        san_summary+=("memcheck $p: compute-sanitizer not found")
        record "memcheck $p" "FAILED: compute-sanitizer not found"
        continue
      fi
      run_step "memcheck $p" "${CAP[memcheck]}" "$f" "$san" --tool memcheck --leak-check no --error-exitcode 9 \
        "$S" --precision $p --shape odd --no-model --no-green --no-bench
      summary=$(grep -m1 "ERROR SUMMARY" "$f" || echo "no ERROR SUMMARY line")
      first=$(grep -m3 -E "Invalid|Address|out of bounds|Leaked" "$f" | tr -s ' ' | cut -c1-160 | paste -sd';' -)
      san_summary+=("memcheck $p: exit $step_rc, $summary${first:+; first: $first}")
      case $step_rc in
        0) record "memcheck $p" "ok ($summary)" ;;
        124 | 137) record "memcheck $p" "FAILED: timeout" ;;
        125) ;;
        *) record "memcheck $p" "FAILED: exit $step_rc ($summary)" ;;
      esac
    done
  fi

  # --- NCCL self send/receive ---
  if want_step nccl; then
    f="$WORK/nccl.txt"
    if ((dry)); then
      STEP_LAST_TOOK=0 STEP_LAST_CAP=${CAP[nccl]}
      "$PACK/bin/nccl_selftest" > "$f" 2>&1
      record nccl "$(dry_verdict "$f")"
    else
      run_step nccl "${CAP[nccl]}" "$f" "$PACK/bin/nccl_selftest"
      [[ $step_rc == 125 ]] || record nccl "$([[ $step_rc == 0 ]] && echo "ok: $(tail -1 "$f")" || echo "FAILED: exit $step_rc: $(tail -1 "$f")")"
    fi
  fi

  # --- the self-test's checks (rows flushed to selftest.txt as they come) ---
  if want_step checks; then
    # shellcheck disable=SC2086
    set -- "$S" --no-bench ${SELFTEST_ARGS:-}
    if ((dry)); then
      STEP_LAST_TOOK=0 STEP_LAST_CAP=${CAP[checks]}
      "$@" > "$table" 2>&1
      record checks "$(dry_verdict "$table")"
    else
      run_step checks "${CAP[checks]}" "$table" "$@"
      fails=$(grep -c '^\[check\].* FAIL ' "$table")
      rows=$(grep -c '^\[check\]' "$table")
      case $step_rc in
        0) record checks "ok: $rows checks passed" ;;
        125) ;;
        124 | 137) record checks "FAILED: timeout after $rows checks ($fails failed)" ;;
        *) record checks "FAILED: exit $step_rc, $rows checks, $fails failed" ;;
      esac
    fi
  fi

  # --- the self-test's timings: per op and the gpt2-124m single-stage step, 3 precisions ---
  if want_step bench; then
    f="$WORK/bench.txt"
    if ((dry)); then
      STEP_LAST_TOOK=0 STEP_LAST_CAP=${CAP[bench]}
      "$S" --shape none --no-model --no-green > "$f" 2>&1
      record bench "$(dry_verdict "$f")"
    else
      run_step bench "${CAP[bench]}" "$f" "$S" --shape none --no-model --no-green
      grep '^\[time\]' "$f" >> "$table"
      case $step_rc in
        0) record bench "ok: $(grep -c '^\[time\]' "$f") timings" ;;
        125) ;;
        *) record bench "FAILED: exit $step_rc after $(grep -c '^\[time\]' "$f") timings" ;;
      esac
    fi
  fi

  md "" "## compute-sanitizer" ""
  if ((${#san_summary[@]})); then for l in "${san_summary[@]}"; do md "- $l"; done; else md "- not run"; fi
  if [[ -s "$table" ]] && ((dry == 0)); then
    md "" "## gpt2-124m single stage (cuda_selftest, one micro-batch of 8x1024, fwd+bwd+AdamW)" ""
    md '```'
    grep -E '^\[time\].*gpt2-124m step' "$table" >> "$result"
    md '```' "" "## failed checks" "" '```'
    grep -E '^\[check\].* FAIL ' "$table" >> "$result" || md "none"
    md '```'
  fi
fi

# ================================ part 2 ================================
if [[ $part == part2 ]]; then
  exec_md="$WORK/executor.md"
  : > "$table"
  one=(--model gpt2-124m --seq 1024 --batch 4 --data synthetic --vocab 50257)
  train_step() {  # PRECISION
    local prec=$1 f="$WORK/train_$1.txt"
    if ((dry)); then
      STEP_LAST_TOOK=0 STEP_LAST_CAP=${CAP[train]}
      "$P" train --device cuda --precision "$prec" --stages 1 --microbatches 2 --steps 6 "${one[@]}" > "$f" 2>&1
      record "train-$prec" "$(dry_verdict "$f")"
      return
    fi
    run_step "train-$prec" "${CAP[train]}" "$f" "$P" train --device cuda --precision "$prec" --stages 1 --microbatches 2 \
      --steps 6 "${one[@]}"
    [[ $step_rc == 125 ]] && return
    local line
    line=$(tr '\r' '\n' < "$f" | grep -E '^step +[0-9]+/' | tail -1)
    local tok mfu
    tok=$(sed -nE 's/.*\| ([0-9]+) tok\/s.*/\1/p' <<< "$line")
    mfu=$(sed -nE 's/.*MFU ([0-9.]+%).*/\1/p' <<< "$line")
    echo "| gpt2-124m 1 stage $prec (paci train, B=4 T=1024) | ${tok:-?} | ${mfu:-?} |" | tee -a "$table" >> "$WORK/exec_rows.md"
    record "train-$prec" "$([[ $step_rc == 0 ]] && echo "ok: ${tok:-?} tok/s, MFU ${mfu:-?}" || echo "FAILED: exit $step_rc")"
  }
  : > "$WORK/exec_rows.md"
  want_step train-bf16 && train_step bf16

  cal="$WORK/cal.json"
  if want_step calibrate; then
    f="$WORK/calibrate.txt"
    cmd=("$P" calibrate --device cuda --precision bf16 --model gpt2-124m --layers 12 --seq 1024 --batch 2 --out "$cal")
    if ((dry)); then
      STEP_LAST_TOOK=0 STEP_LAST_CAP=${CAP[calibrate]}
      "${cmd[@]}" > "$f" 2>&1
      record calibrate "$(dry_verdict "$f")"
    else
      run_step calibrate "${CAP[calibrate]}" "$f" "${cmd[@]}"
      [[ $step_rc == 125 ]] || record calibrate "$([[ $step_rc == 0 && -s $cal ]] && echo ok || echo "FAILED: exit $step_rc")"
    fi
  fi

  if want_step compare; then
    echo "| 4 stages on one GPU (bf16, M=8, B=2) | SM partition | measured step (s) | predicted (s) | error | peak MiB measured/predicted (worst stage) |" > "$exec_md.cmp"
    echo "|---|---|---|---|---|---|" >> "$exec_md.cmp"
    for part_sm in off equal; do
      for sched in gpipe 1f1b paci; do
        name="compare $sched sm=$part_sm"
        j="$WORK/compare_${sched}_$part_sm.json"
        f="$WORK/compare_${sched}_$part_sm.txt"
        cmd=("$P" compare --device cuda --precision bf16 --sm-partition "$part_sm" --schedule "$sched" --stages 4
          --microbatches 8 --steps 4 --model gpt2-124m --seq 1024 --batch 2 --calibration "$cal" --json "$j")
        if ((dry)); then
          STEP_LAST_TOOK=0 STEP_LAST_CAP=${CAP[compare]}
          "${cmd[@]}" > "$f" 2>&1
          record "$name" "$(dry_verdict "$f")"
          continue
        fi
        run_step "$name" "${CAP[compare]}" "$f" "${cmd[@]}"
        [[ $step_rc == 125 ]] && continue
        rowtxt=$(python3 - "$j" "$sched" "$part_sm" 2> /dev/null << 'PY' || echo "| $sched | $part_sm | failed | | | |"
import json, sys
c = json.load(open(sys.argv[1]))
m, p = c["measured"]["step_time"], c["predicted"]["step_time"]
worst = max(c.get("devices", []), key=lambda d: d["measured_peak_bytes"], default=None)
mem = "" if worst is None else f'{worst["measured_peak_bytes"] / 2**20:.0f} / {worst["predicted_peak_bytes"] / 2**20:.0f}'
print(f"| {sys.argv[2]} | {sys.argv[3]} | {m:.4f} | {p:.4f} | {100 * (p - m) / m:+.1f}% | {mem} |")
PY
        )
        echo "$rowtxt" >> "$exec_md.cmp"
        echo "$rowtxt" >> "$table"
        record "$name" "$([[ $step_rc == 0 && $rowtxt != *failed* ]] && echo ok || echo "FAILED: exit $step_rc")"
      done
    done
  fi
  want_step train-fp32 && train_step fp32
  want_step train-tf32 && train_step tf32

  if ((dry == 0)); then
    md "" "## the executor on the GPU" "" "| run | tokens/s | MFU |" "|---|---|---|"
    cat "$WORK/exec_rows.md" >> "$result"
    md ""
    [[ -f "$exec_md.cmp" ]] && cat "$exec_md.cmp" >> "$result"
  fi
fi

# --- the end: file-count rule, exit status ---
pack_details
rm -rf "$WORK"
top=$(find "$OUT" -mindepth 1 -maxdepth 1 | wc -l)
md "" "$(elapsed) s of a ${budget} s budget (device timeout_s ${PART_DEVICE_TIMEOUT[$part]}); $top files in \$OUT"
if ((top > max_top_files)); then
  say "ERROR: $top top-level files in $OUT (the device tool brings back $max_top_files)"
  rc_all=1
fi
md "exit status: $rc_all"
say "== done in $(elapsed)s: exit $rc_all; $top files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
echo
cat "$result"
exit $rc_all
