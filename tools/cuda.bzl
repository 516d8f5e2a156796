"""Minimal CUDA support without rules_cuda: nvcc in a genrule -> static lib -> cc_library."""

# Use as target_compatible_with: skip a target unless --config=cuda.
CUDA_ONLY = select({
    "//tools:cuda_enabled": [],
    "//conditions:default": ["//tools:incompatible"],
})

def if_cuda(if_true, if_false = []):
    return select({
        "//tools:cuda_enabled": if_true,
        "//conditions:default": if_false,
    })

def cuda_library(name, srcs, hdrs = [], deps = [], nvcc_flags = [], **kwargs):
    """Compiles .cu files with nvcc into lib<name>_cu.a and wraps it in a cc_library."""
    lib = "lib%s_cu.a" % name
    native.genrule(
        name = name + "_nvcc",
        srcs = srcs + hdrs,
        outs = [lib],
        tools = if_cuda(["@local_cuda//:nvcc"]),
        cmd = if_cuda(
            # readlink -f: run nvcc from the real toolkit dir so it finds include/ and nvvm/.
            "$$(readlink -f $(location @local_cuda//:nvcc)) -lib -O2 -std=c++17 -Xcompiler -fPIC " +
            "-I. -I$(GENDIR) " + " ".join(nvcc_flags) + " " +
            " ".join(["$(location %s)" % s for s in srcs]) + " -o $@",
            "echo 'cuda_library needs --config=cuda' >&2; exit 1",
        ),
        target_compatible_with = CUDA_ONLY,
        message = "nvcc " + name,
    )
    native.cc_library(
        name = name,
        srcs = [lib],
        hdrs = hdrs,
        deps = deps + if_cuda(["@local_cuda//:cudart_static"]),
        target_compatible_with = CUDA_ONLY,
        **kwargs
    )
