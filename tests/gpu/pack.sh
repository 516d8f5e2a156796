#!/usr/bin/env bash
# Builds the CUDA binaries here (no GPU needed) and copies them, with the small shared
# libraries they need that a lent GPU machine may lack, into one ignored folder to carry:
#   tests/gpu/pack.sh [dest]          (default: out/cuda_pack; /out/ is in .gitignore)
# cuBLAS/cuBLASLt/NCCL are NOT copied (too large): gpu_check.sh finds the machine's own.
# cudart is linked statically. Prints the folder's size (the device tool carries <= 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
dest="${1:-out/cuda_pack}"

bazel build -c opt --config=cuda //exec/cuda:cuda_selftest //exec/cuda:find_cuda_libs //exec/cuda:nccl_selftest \
  //cli:paci

rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib"
for b in cuda_selftest find_cuda_libs nccl_selftest; do
  cp -L "bazel-bin/exec/cuda/$b" "$dest/bin/$b"
  chmod u+w "$dest/bin/$b"
  strip --strip-unneeded "$dest/bin/$b" 2>/dev/null || true
done
cp -L bazel-bin/cli/paci "$dest/bin/paci"
chmod u+w "$dest/bin/paci"
strip --strip-unneeded "$dest/bin/paci" 2>/dev/null || true
cp tests/gpu/gpu_check.sh "$dest/"

# Shared libraries: everything ldd resolves except glibc's own, the loader, and the CUDA
# libraries that come from the machine (cuBLAS, cuBLASLt, NCCL, the driver).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libcublas|libcublasLt|libnccl|libcuda\.so)'
{ ldd "$dest/bin/cuda_selftest"; ldd "$dest/bin/paci"; } | awk '/=>/ {print $1, $3}' | sort -u | while read -r name path; do
  if [[ "$name" =~ $skip ]] || [[ ! -f "$path" ]]; then continue; fi
  cp -L "$path" "$dest/lib/$name"
done

{
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "dirty_files $(git status --porcelain 2>/dev/null | wc -l)"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "nvcc $(/usr/local/cuda/bin/nvcc --version | tail -1)"
} > "$dest/BUILD_INFO"

echo "packed into $dest:"
ls -la "$dest/bin" "$dest/lib"
du -sh "$dest"
size=$(du -sb "$dest" | cut -f1)
if (( size > 60 * 1024 * 1024 )); then
  echo "WARNING: $dest is $((size / 1048576)) MiB; the device tool carries at most 64 MiB in all" >&2
fi
