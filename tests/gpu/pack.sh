#!/usr/bin/env bash
# Builds the CUDA binaries here (no GPU needed) and copies them, with the small shared
# libraries they need that a lent GPU machine may lack, into one ignored folder to carry:
#   tests/gpu/pack.sh [dest]          (default: out/cuda_pack; /out/ is in .gitignore)
#   tests/gpu/pack.sh --sources-hash  (prints the hash of the sources a pack is built from)
# What is packed is found, not listed: every cc_binary under //exec/cuda/... plus //cli:paci
# (a new CUDA tool is picked up without editing this file), and the whole tests/gpu/ folder.
# The build covers whatever the tree holds now (new schedules, partitions: Bazel builds them
# into paci); BUILD_INFO records the commit, the uncommitted files and a hash of every source
# under the folders paci is built from, so `gpu_check.sh --dry-run` can tell a stale pack.
# cuBLAS/cuBLASLt/NCCL are NOT copied (too large): gpu_check.sh finds the machine's own.
# cudart is linked statically. Prints the folder's size (the device tool carries <= 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."

# Source folders: every top-level folder with a BUILD file (new ones are included), minus
# outputs and the third-party stubs.
source_dirs() {
  for d in */; do
    d="${d%/}"
    case "$d" in bazel-* | out | third_party | node_modules) continue ;; esac
    [[ -f "$d/BUILD" || -f "$d/BUILD.bazel" || -n "$(find "$d" -maxdepth 3 -name BUILD -print -quit 2> /dev/null)" ]] && echo "$d"
  done
}
sources_hash() {
  # Tracked and untracked-but-not-ignored files, contents and names.
  # shellcheck disable=SC2046
  git ls-files -co --exclude-standard -- $(source_dirs) WORKSPACE BUILD .bazelrc 2> /dev/null | LC_ALL=C sort |
    while read -r f; do [[ -f "$f" ]] && { echo "$f"; cat "$f"; }; done | sha256sum | cut -c1-16
}
if [[ "${1:-}" == "--sources-hash" ]]; then
  sources_hash
  exit 0
fi
dest="${1:-out/cuda_pack}"

flags=(-c opt --config=cuda --color=no --curses=no --show_progress_rate_limit=30)
mapfile -t targets < <(bazel query --color=no --curses=no 'kind("cc_binary", //exec/cuda/...) + //cli:paci' 2> /dev/null)
if ((${#targets[@]} < 2)); then
  echo "bazel query found no binaries (${targets[*]:-none})" >&2
  exit 1
fi
echo "building: ${targets[*]}"
bazel build "${flags[@]}" "${targets[@]}"

rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib"
for t in "${targets[@]}"; do
  pkg="${t#//}"
  pkg="${pkg%%:*}"
  name="${t##*:}"
  cp -L "bazel-bin/$pkg/$name" "$dest/bin/$name"
  chmod u+w "$dest/bin/$name"
  strip --strip-unneeded "$dest/bin/$name" 2> /dev/null || true
done
for need in cuda_selftest find_cuda_libs nccl_selftest paci; do
  [[ -x "$dest/bin/$need" ]] || { echo "missing $need in the pack" >&2; exit 1; }
done
# The device tool copies the working tree, so the scripts travel anyway; a copy in the pack
# keeps the pack self-contained (it runs from any folder).
cp -r tests/gpu "$dest/gpu"

# Shared libraries: everything ldd resolves except glibc's own, the loader, and the CUDA
# libraries that come from the machine (cuBLAS, cuBLASLt, NCCL, the driver).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libcublas|libcublasLt|libnccl|libcuda\.so)'
for b in "$dest"/bin/*; do ldd "$b" 2> /dev/null || true; done | awk '/=>/ {print $1, $3}' | sort -u |
  while read -r name path; do
    if [[ "$name" =~ $skip ]] || [[ ! -f "$path" ]]; then continue; fi
    cp -L "$path" "$dest/lib/$name"
  done

{
  echo "commit $(git rev-parse HEAD 2> /dev/null || echo unknown)"
  echo "dirty_files $(git status --porcelain 2> /dev/null | wc -l)"
  echo "sources $(sources_hash)"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "nvcc $(/usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "binaries $(cd "$dest/bin" && ls | tr '\n' ' ')"
} > "$dest/BUILD_INFO"

echo "packed into $dest:"
ls -la "$dest/bin" "$dest/lib"
du -sh "$dest"
size=$(du -sb "$dest" | cut -f1)
if ((size > 60 * 1024 * 1024)); then
  echo "WARNING: $dest is $((size / 1048576)) MiB; the device tool carries at most 64 MiB in all" >&2
fi
