// CudaBackend: memory, streams, cuBLAS GEMMs and the orchestration of the kernels in
// kernels.cu. Compiled by the host compiler against the CUDA headers.
#include "exec/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "exec/cuda/check.h"
#include "exec/cuda/gemm_plan.h"
#include "exec/cuda/green_context.h"
#include "exec/cuda/host_pool.h"
#include "exec/cuda/kernels.h"
#include "exec/cuda/launch_config.h"

namespace paci {

using namespace paci::cuda;

const char* precision_name(CudaPrecision p) {
  switch (p) {
    case CudaPrecision::kFp32:
      return "fp32";
    case CudaPrecision::kTf32:
      return "tf32";
    case CudaPrecision::kBf16:
      return "bf16";
  }
  return "?";
}

CudaPrecision parse_precision(const std::string& s) {
  if (s == "fp32") return CudaPrecision::kFp32;
  if (s == "tf32") return CudaPrecision::kTf32;
  if (s == "bf16") return CudaPrecision::kBf16;
  throw std::invalid_argument("unknown CUDA precision '" + s + "' (fp32, tf32 or bf16)");
}

namespace {

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

// Carves one scratch block into 256-byte-aligned pieces.
struct Carve {
  std::vector<size_t> sizes;
  size_t add(size_t bytes) {
    sizes.push_back(bytes);
    return sizes.size() - 1;
  }
  size_t total() const {
    size_t t = 0;
    for (size_t s : sizes) t += align256(s);
    return t;
  }
  void* at(void* base, size_t i) const {
    size_t off = 0;
    for (size_t k = 0; k < i; ++k) off += align256(sizes[k]);
    return static_cast<char*>(base) + off;
  }
};

cublasOperation_t op(Trans t) { return t == Trans::kN ? CUBLAS_OP_N : CUBLAS_OP_T; }

}  // namespace

struct CudaBackend::Impl {
  CudaBackendOptions opt;
  void* ctx = nullptr;  // CUcontext every operation runs in: cu_context, or the device's primary
  cudaStream_t stream = nullptr;
  bool own_stream = false;
  cublasHandle_t blas = nullptr;
  void* blas_ws = nullptr;
  int* err = nullptr;  // device int[kErrWords]
  void* scratch = nullptr;
  size_t scratch_size = 0;
  int last_vocab = 0;  // V of the last embedding_forward (guards embedding_backward)

  mutable std::mutex mu;
  std::unordered_map<void*, size_t> user;  // alloc() pointers and their sizes
  BlockPool pool;                          // freed user blocks kept for reuse (host_pool.h)
  std::string deferred_error;              // from free(), thrown at the next sync point
  CudaMemoryStats stats;

  // from_host's page-locked staging (host_pool.h): 4 slots of up to 32 MiB each.
  struct StagingSlot {
    void* host = nullptr;
    cudaEvent_t done = nullptr;  // recorded after the last copy out of the slot
  };
  std::mutex staging_mu;
  StagingRing ring{4, 32u << 20};
  std::vector<StagingSlot> staging = std::vector<StagingSlot>(4);

  void touch_peaks() {  // under mu
    if (stats.current_bytes > stats.peak_bytes) stats.peak_bytes = stats.current_bytes;
    if (stats.user_bytes > stats.peak_user_bytes) stats.peak_user_bytes = stats.user_bytes;
  }
  // A new cudaMalloc'd block.
  void count_alloc(size_t bytes, bool is_user) {
    std::lock_guard<std::mutex> lock(mu);
    stats.current_bytes += bytes;
    if (is_user) {
      stats.user_bytes += bytes;
      stats.allocations += 1;
    } else {
      stats.scratch_bytes += bytes;
    }
    touch_peaks();
  }
  // A cudaFree'd block (scratch).
  void count_free(size_t bytes, bool is_user) {
    std::lock_guard<std::mutex> lock(mu);
    stats.current_bytes -= bytes;
    if (is_user) {
      stats.user_bytes -= bytes;
      stats.allocations -= 1;
    } else {
      stats.scratch_bytes -= bytes;
    }
  }
  // Returns every cached block to the driver (a cudaMalloc failed, or the destructor).
  void release_pool() {
    std::vector<std::pair<void*, size_t>> blocks;
    {
      std::lock_guard<std::mutex> lock(mu);
      blocks = pool.release();
      for (auto& b : blocks) {
        stats.cached_bytes -= b.second;
        stats.current_bytes -= b.second;
      }
    }
    for (auto& b : blocks) (void)cudaFree(b.first);
  }

  // Scratch of at least `bytes`, valid until the next call (operations run in stream order).
  void* get_scratch(size_t bytes) {
    if (bytes <= scratch_size) return scratch;
    if (scratch) {
      PACI_CUDA_CHECK(cudaStreamSynchronize(stream));  // queued work may still read it
      PACI_CUDA_CHECK(cudaFree(scratch));
      count_free(scratch_size, false);
      scratch = nullptr;
      scratch_size = 0;
    }
    const size_t sz = align256(bytes + bytes / 8);  // a little headroom against regrowth
    scratch = device_malloc(sz);
    scratch_size = sz;
    count_alloc(sz, false);
    return scratch;
  }

  bool bf16() const { return opt.precision == CudaPrecision::kBf16; }

  // cudaMalloc; on out-of-memory, gives the pool's cached blocks back and tries once more.
  void* device_malloc(size_t bytes) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_pool();
      e = cudaMalloc(&p, bytes);
    }
    PACI_CUDA_CHECK(e);
    return p;
  }

  // Row-major GEMM (gemm_plan.h) on this stream; A, B of type `ab` (float or bf16), C float.
  void gemm(const RowMajorGemm& g, const void* A, const void* B, float* C, float alpha,
            float beta, cudaDataType_t ab) {
    const std::string why = gemm_error(g);
    if (!why.empty()) throw std::invalid_argument("CudaBackend GEMM: " + why);
    if (g.M == 0 || g.N == 0) return;
    const ColumnMajorCall c = to_column_major(g);
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    if (opt.precision == CudaPrecision::kTf32 && ab == CUDA_R_32F) {
      ct = CUBLAS_COMPUTE_32F_FAST_TF32;
    } else if (opt.precision == CudaPrecision::kFp32) {
      ct = CUBLAS_COMPUTE_32F;  // plain fp32 FMA (TF32 needs FAST_TF32 or a TF32 math mode)
    }
    // cuBLAS A = row-major B, cuBLAS B = row-major A.
    if (g.batch == 1) {
      PACI_CUBLAS_CHECK(cublasGemmEx(blas, op(c.transa), op(c.transb), c.m, c.n, c.k, &alpha, B, ab,
                                     c.lda, A, ab, c.ldb, &beta, C, CUDA_R_32F, c.ldc, ct,
                                     CUBLAS_GEMM_DEFAULT));
    } else {
      PACI_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          blas, op(c.transa), op(c.transb), c.m, c.n, c.k, &alpha, B, ab, c.lda, c.stride_a, A, ab,
          c.ldb, c.stride_b, &beta, C, CUDA_R_32F, c.ldc, c.stride_c, c.batch, ct,
          CUBLAS_GEMM_DEFAULT));
    }
  }

  void after_op() {
    if (opt.debug_sync) PACI_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  // After a stream sync: turn kernel-side range errors into exceptions (and clear them).
  void check_errors() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!deferred_error.empty()) {
        const std::string e = deferred_error;
        deferred_error.clear();
        throw std::runtime_error(e);
      }
    }
    int h[kErrWords] = {0, 0};
    PACI_CUDA_CHECK(cudaMemcpyAsync(h, err, sizeof(h), cudaMemcpyDeviceToHost, stream));
    PACI_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (h[kErrToken] == 0 && h[kErrTarget] == 0) return;
    PACI_CUDA_CHECK(cudaMemsetAsync(err, 0, sizeof(h), stream));
    PACI_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (h[kErrToken] != 0) {
      throw std::out_of_range("embedding: a token at row " + std::to_string(h[kErrToken] - 1) +
                              " is outside the vocabulary (CUDA backend)");
    }
    throw std::out_of_range("cross-entropy: the target at row " +
                            std::to_string(h[kErrTarget] - 1) +
                            " is outside the vocabulary (CUDA backend)");
  }
};

// ---------------------------------------------------------------------------------------------

int CudaBackend::device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no driver/device" error
    return 0;
  }
  return n;
}

CudaDeviceInfo CudaBackend::device_info(int device) {
  cudaDeviceProp p{};
  PACI_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  CudaDeviceInfo d;
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.sm_count = p.multiProcessorCount;
  d.total_memory = p.totalGlobalMem;
  PACI_CUDA_CHECK(cudaRuntimeGetVersion(&d.runtime_version));
  PACI_CUDA_CHECK(cudaDriverGetVersion(&d.driver_version));
  return d;
}

CudaBackend::CudaBackend(const CudaBackendOptions& options) : impl_(new Impl) {
  Impl& m = *impl_;
  m.opt = options;
  m.ctx = options.cu_context ? options.cu_context : cuda::primary_context(options.device);
  // Everything below is made in the backend's context; the caller's context is restored after.
  ScopedContext scope(m.ctx);
  if (options.external_stream) {
    m.stream = static_cast<cudaStream_t>(options.external_stream);
  } else {
    PACI_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
    m.own_stream = true;
  }
  PACI_CUBLAS_CHECK(cublasCreate(&m.blas));
  PACI_CUBLAS_CHECK(cublasSetStream(m.blas, m.stream));
  PACI_CUBLAS_CHECK(cublasSetPointerMode(m.blas, CUBLAS_POINTER_MODE_HOST));
  // Never let cuBLAS use atomics (it would lose run-to-run reproducibility).
  PACI_CUBLAS_CHECK(cublasSetAtomicsMode(m.blas, CUBLAS_ATOMICS_NOT_ALLOWED));
  PACI_CUBLAS_CHECK(cublasSetMathMode(m.blas, CUBLAS_DEFAULT_MATH));
  if (options.cublas_workspace_bytes > 0) {
    PACI_CUDA_CHECK(cudaMalloc(&m.blas_ws, options.cublas_workspace_bytes));
    m.count_alloc(options.cublas_workspace_bytes, false);
    PACI_CUBLAS_CHECK(cublasSetWorkspace(m.blas, m.blas_ws, options.cublas_workspace_bytes));
  }
  PACI_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&m.err), kErrWords * sizeof(int)));
  m.count_alloc(kErrWords * sizeof(int), false);
  PACI_CUDA_CHECK(cudaMemsetAsync(m.err, 0, kErrWords * sizeof(int), m.stream));
  PACI_CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

CudaBackend::~CudaBackend() {
  // No throwing from a destructor: best effort, errors ignored.
  Impl& m = *impl_;
  std::unique_ptr<ScopedContext> scope;
  try {
    // Free in the context the buffers and handles were made in; the caller's comes back after.
    scope = std::make_unique<ScopedContext>(m.ctx);
  } catch (...) {
  }
  if (m.stream) (void)cudaStreamSynchronize(m.stream);
  if (m.blas) (void)cublasDestroy(m.blas);
  if (m.blas_ws) (void)cudaFree(m.blas_ws);
  if (m.scratch) (void)cudaFree(m.scratch);
  if (m.err) (void)cudaFree(m.err);
  for (auto& kv : m.user) (void)cudaFree(kv.first);
  for (auto& b : m.pool.release()) (void)cudaFree(b.first);
  for (auto& sl : m.staging) {
    if (sl.done) (void)cudaEventDestroy(sl.done);
    if (sl.host) (void)cudaFreeHost(sl.host);
  }
  if (m.own_stream && m.stream) (void)cudaStreamDestroy(m.stream);
}

std::string CudaBackend::name() const {
  return "cuda:" + std::to_string(impl_->opt.device) + ":" + precision_name(impl_->opt.precision);
}
const CudaBackendOptions& CudaBackend::options() const { return impl_->opt; }
CudaMemoryStats CudaBackend::memory() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}
void CudaBackend::reset_peak() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stats.peak_bytes = impl_->stats.current_bytes;
  impl_->stats.peak_user_bytes = impl_->stats.user_bytes;
}
void CudaBackend::release_cache() {
  ScopedContext scope(impl_->ctx);
  impl_->release_pool();
}
void* CudaBackend::stream() const { return impl_->stream; }

void CudaBackend::bind_thread() const {
  PACI_CUDA_CHECK(cudaSetDevice(impl_->opt.device));
  if (impl_->opt.cu_context) set_current_context(impl_->opt.cu_context);
}


// ---- memory ----
void* CudaBackend::alloc(size_t bytes) {
  Impl& m = *impl_;
  ScopedContext scope(m.ctx);  // safe from any thread; the caller's context is restored
  const size_t sz = align256(bytes == 0 ? 1 : bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    p = m.pool.take(sz);
    if (p) {  // a block this backend freed: no cudaMalloc
      m.stats.cached_bytes -= sz;
      m.stats.user_bytes += sz;
      m.stats.allocations += 1;
      m.touch_peaks();
    }
  }
  if (!p) {
    p = m.device_malloc(sz);
    m.count_alloc(sz, true);
  }
  // The zero-fill runs on this stream, so after everything queued here before the block's
  // free. Other stages' streams may touch the buffer next: make the fill complete now.
  PACI_CUDA_CHECK(cudaMemsetAsync(p, 0, sz, m.stream));
  PACI_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.user[p] = sz;
  }
  return p;
}

// Never throws (StageModel and other owners free from destructors): an error is printed and
// thrown by the next to_host()/synchronize() instead.
void CudaBackend::free(void* p) {
  if (!p) return;
  Impl& m = *impl_;
  try {
    size_t sz = 0;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      auto it = m.user.find(p);
      if (it == m.user.end()) {
        throw std::invalid_argument("CudaBackend::free: pointer was not allocated by this backend");
      }
      sz = it->second;
      m.user.erase(it);
      // Into the pool (no cudaFree, which would synchronize the whole device). Only this
      // backend reuses it, and its alloc() refills it on this stream: stream-ordered after
      // every operation already queued that may still read it.
      m.pool.give(p, sz);
      m.stats.user_bytes -= sz;
      m.stats.allocations -= 1;
      m.stats.cached_bytes += sz;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "CudaBackend::free: %s\n", e.what());
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.deferred_error.empty()) m.deferred_error = e.what();
  }
}

void CudaBackend::zero(void* p, size_t bytes) {
  ScopedContext scope(impl_->ctx);
  if (bytes == 0) return;
  PACI_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, impl_->stream));
  impl_->after_op();
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  ScopedContext scope(impl_->ctx);
  if (bytes == 0 || dst == src) return;
  PACI_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_->stream));
  impl_->after_op();
}

void CudaBackend::to_host(void* host_dst, const void* src, size_t bytes) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  if (bytes > 0) {
    PACI_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, m.stream));
  }
  PACI_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.check_errors();
}

void CudaBackend::from_host(void* dst, const void* host_src, size_t bytes) {
  Impl& m = *impl_;
  if (bytes == 0) return;
  ScopedContext scope(m.ctx);
  if (m.ring.stages(bytes)) {
    // Through a page-locked slot (host_pool.h): the host copies, the DMA runs asynchronously,
    // and the caller may reuse its buffer at once.
    std::lock_guard<std::mutex> lock(m.staging_mu);
    const StagingStep step = m.ring.plan(bytes);
    Impl::StagingSlot& slot = m.staging[static_cast<size_t>(step.slot)];
    if (step.wait && slot.done) PACI_CUDA_CHECK(cudaEventSynchronize(slot.done));
    if (step.grow_to > 0 || !slot.host) {  // (!host: an earlier growth threw)
      if (slot.host) PACI_CUDA_CHECK(cudaFreeHost(slot.host));
      slot.host = nullptr;
      PACI_CUDA_CHECK(cudaHostAlloc(&slot.host, m.ring.capacity(step.slot), cudaHostAllocDefault));
    }
    if (!slot.done) PACI_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
    std::memcpy(slot.host, host_src, bytes);
    PACI_CUDA_CHECK(cudaMemcpyAsync(dst, slot.host, bytes, cudaMemcpyHostToDevice, m.stream));
    PACI_CUDA_CHECK(cudaEventRecord(slot.done, m.stream));
    m.after_op();
    return;
  }
  // Large uploads (parameters at start-up, a restored snapshot) go direct.
  PACI_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, m.stream));
  // From pageable memory the call returns once the data is staged, so the caller may reuse
  // its buffer at once. From page-locked memory the copy is truly asynchronous: wait for it,
  // so that the same promise holds.
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, host_src) == cudaSuccess &&
      attr.type == cudaMemoryTypeHost) {
    PACI_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  }
  (void)cudaGetLastError();
  m.after_op();
}

void CudaBackend::synchronize() {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
  impl_->check_errors();
}

// ---- linear layers ----
void CudaBackend::matmul_forward(float* out, const float* in, const float* w, const float* bias,
                                 int N, int IC, int OC) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  if (N == 0 || OC == 0) return;
  float beta = 0.f;
  if (bias) {
    PACI_CUDA_CHECK(launch_fill_bias(out, bias, N, OC, m.stream));
    beta = 1.f;
  }
  if (IC == 0) {
    if (!bias) zero(out, static_cast<size_t>(N) * OC * sizeof(float));
    return;
  }
  const RowMajorGemm g = linear_forward_gemm(N, IC, OC);
  if (m.bf16()) {
    Carve cv;
    const size_t a = cv.add(static_cast<size_t>(N) * IC * 2), b = cv.add(static_cast<size_t>(OC) * IC * 2);
    void* base = m.get_scratch(cv.total());
    PACI_CUDA_CHECK(launch_cast_to_bf16(cv.at(base, a), in, static_cast<size_t>(N) * IC, m.stream));
    PACI_CUDA_CHECK(launch_cast_to_bf16(cv.at(base, b), w, static_cast<size_t>(OC) * IC, m.stream));
    m.gemm(g, cv.at(base, a), cv.at(base, b), out, 1.f, beta, CUDA_R_16BF);
  } else {
    m.gemm(g, in, w, out, 1.f, beta, CUDA_R_32F);
  }
  m.after_op();
}

void CudaBackend::matmul_backward_input(float* din, const float* dout, const float* w, int N,
                                        int IC, int OC) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  if (N == 0 || IC == 0 || OC == 0) return;
  const RowMajorGemm g = linear_backward_input_gemm(N, IC, OC);
  if (m.bf16()) {
    Carve cv;
    const size_t a = cv.add(static_cast<size_t>(N) * OC * 2), b = cv.add(static_cast<size_t>(OC) * IC * 2);
    void* base = m.get_scratch(cv.total());
    PACI_CUDA_CHECK(launch_cast_to_bf16(cv.at(base, a), dout, static_cast<size_t>(N) * OC, m.stream));
    PACI_CUDA_CHECK(launch_cast_to_bf16(cv.at(base, b), w, static_cast<size_t>(OC) * IC, m.stream));
    m.gemm(g, cv.at(base, a), cv.at(base, b), din, 1.f, 1.f, CUDA_R_16BF);
  } else {
    m.gemm(g, dout, w, din, 1.f, 1.f, CUDA_R_32F);
  }
  m.after_op();
}

void CudaBackend::matmul_backward_weight(float* dw, float* dbias, const float* dout,
                                         const float* in, int N, int IC, int OC) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  if (OC == 0 || N == 0) return;
  const ColumnReducePlan plan = column_reduce_plan(N, OC);
  Carve cv;
  const size_t part = cv.add(dbias ? plan.partial_elems() * sizeof(float) : 0);
  size_t a = 0, b = 0;
  if (m.bf16() && IC > 0) {
    a = cv.add(static_cast<size_t>(N) * OC * 2);
    b = cv.add(static_cast<size_t>(N) * IC * 2);
  }
  void* base = m.get_scratch(cv.total());
  if (IC > 0) {
    const RowMajorGemm g = linear_backward_weight_gemm(N, IC, OC);
    if (m.bf16()) {
      PACI_CUDA_CHECK(launch_cast_to_bf16(cv.at(base, a), dout, static_cast<size_t>(N) * OC, m.stream));
      PACI_CUDA_CHECK(launch_cast_to_bf16(cv.at(base, b), in, static_cast<size_t>(N) * IC, m.stream));
      m.gemm(g, cv.at(base, a), cv.at(base, b), dw, 1.f, 1.f, CUDA_R_16BF);
    } else {
      m.gemm(g, dout, in, dw, 1.f, 1.f, CUDA_R_32F);
    }
  }
  if (dbias) {
    PACI_CUDA_CHECK(launch_column_sum(dbias, dout, N, OC, static_cast<float*>(cv.at(base, part)),
                                      m.stream));
  }
  m.after_op();
}

// ---- LayerNorm ----
void CudaBackend::layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                    const float* w, const float* b, int N, int C) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(launch_layernorm_forward(out, mean, rstd, in, w, b, N, C, impl_->stream));
  impl_->after_op();
}

void CudaBackend::layernorm_backward_input(float* din, const float* dout, const float* in,
                                           const float* w, const float* mean, const float* rstd,
                                           int N, int C) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(
      launch_layernorm_backward_input(din, dout, in, w, mean, rstd, N, C, impl_->stream));
  impl_->after_op();
}

void CudaBackend::layernorm_backward_params(float* dw, float* db, const float* dout,
                                            const float* in, const float* mean, const float* rstd,
                                            int N, int C) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  if (N == 0 || C == 0) return;
  const ColumnReducePlan plan = column_reduce_plan(N, C);
  float* partial = static_cast<float*>(m.get_scratch(2 * plan.partial_elems() * sizeof(float)));
  PACI_CUDA_CHECK(
      launch_layernorm_backward_params(dw, db, dout, in, mean, rstd, N, C, partial, m.stream));
  m.after_op();
}

// ---- attention ----
size_t CudaBackend::attention_state_elems(int B, int Tn, int /*C*/, int NH) const {
  const size_t probs = static_cast<size_t>(B) * NH * Tn * Tn;
  return impl_->bf16() ? (probs + 1) / 2 : probs;  // bf16 probabilities: two per float slot
}

void CudaBackend::attention_forward(float* out, float* att, const float* qkv, int B, int Tn,
                                    int C, int NH) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  const AttentionShape s{B, Tn, C, NH};
  const std::string why = attention_shape_error(s);
  if (!why.empty()) throw std::invalid_argument("CudaBackend::" + why);
  const int hs = s.head_size();
  const int BNH = static_cast<int>(s.batches());
  const bool bf = m.bf16();
  const size_t elt = bf ? 2 : 4;
  const size_t head = static_cast<size_t>(s.head_elems());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hs)));
  const cudaDataType_t ab = bf ? CUDA_R_16BF : CUDA_R_32F;

  Carve cv;
  const size_t iq = cv.add(head * elt), ik = cv.add(head * elt), iv = cv.add(head * elt);
  const size_t io = cv.add(head * sizeof(float));
  const size_t iS = cv.add(bf ? static_cast<size_t>(s.score_elems()) * sizeof(float) : 0);
  void* base = m.get_scratch(cv.total());
  void* q = cv.at(base, iq);
  void* k = cv.at(base, ik);
  void* v = cv.at(base, iv);
  float* o = static_cast<float*>(cv.at(base, io));
  float* S = bf ? static_cast<float*>(cv.at(base, iS)) : att;  // fp32: softmax in place

  const int64_t C3 = 3 * static_cast<int64_t>(C);
  PACI_CUDA_CHECK(launch_to_heads(q, bf, qkv, C3, B, Tn, C, NH, m.stream));
  PACI_CUDA_CHECK(launch_to_heads(k, bf, qkv + C, C3, B, Tn, C, NH, m.stream));
  PACI_CUDA_CHECK(launch_to_heads(v, bf, qkv + 2 * C, C3, B, Tn, C, NH, m.stream));
  m.gemm(attention_scores_gemm(BNH, Tn, hs), q, k, S, scale, 0.f, ab);
  PACI_CUDA_CHECK(launch_causal_softmax(att, bf, S, s.score_elems() / Tn, Tn, m.stream));
  m.gemm(attention_values_gemm(BNH, Tn, hs), att, v, o, 1.f, 0.f, ab);
  PACI_CUDA_CHECK(launch_from_heads(out, C, o, B, Tn, C, NH, /*accumulate=*/false, m.stream));
  m.after_op();
}

void CudaBackend::attention_backward(float* dqkv, const float* dout, const float* qkv,
                                     const float* att, int B, int Tn, int C, int NH) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  const AttentionShape s{B, Tn, C, NH};
  const std::string why = attention_shape_error(s);
  if (!why.empty()) throw std::invalid_argument("CudaBackend::" + why);
  const int hs = s.head_size();
  const int BNH = static_cast<int>(s.batches());
  const bool bf = m.bf16();
  const size_t elt = bf ? 2 : 4;
  const size_t head = static_cast<size_t>(s.head_elems());
  const size_t scores = static_cast<size_t>(s.score_elems());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hs)));
  const cudaDataType_t ab = bf ? CUDA_R_16BF : CUDA_R_32F;

  Carve cv;
  const size_t iq = cv.add(head * elt), ik = cv.add(head * elt), iv = cv.add(head * elt);
  const size_t ido = cv.add(head * elt);
  const size_t idq = cv.add(head * sizeof(float)), idk = cv.add(head * sizeof(float)),
               idv = cv.add(head * sizeof(float));
  const size_t idP = cv.add(scores * sizeof(float));
  const size_t idS = cv.add(bf ? scores * 2 : 0);
  void* base = m.get_scratch(cv.total());
  void* q = cv.at(base, iq);
  void* k = cv.at(base, ik);
  void* v = cv.at(base, iv);
  void* dO = cv.at(base, ido);
  float* dq = static_cast<float*>(cv.at(base, idq));
  float* dk = static_cast<float*>(cv.at(base, idk));
  float* dv = static_cast<float*>(cv.at(base, idv));
  float* dP = static_cast<float*>(cv.at(base, idP));
  void* dS = bf ? cv.at(base, idS) : static_cast<void*>(dP);

  const int64_t C3 = 3 * static_cast<int64_t>(C);
  PACI_CUDA_CHECK(launch_to_heads(q, bf, qkv, C3, B, Tn, C, NH, m.stream));
  PACI_CUDA_CHECK(launch_to_heads(k, bf, qkv + C, C3, B, Tn, C, NH, m.stream));
  PACI_CUDA_CHECK(launch_to_heads(v, bf, qkv + 2 * C, C3, B, Tn, C, NH, m.stream));
  PACI_CUDA_CHECK(launch_to_heads(dO, bf, dout, C, B, Tn, C, NH, m.stream));
  m.gemm(attention_dvalues_gemm(BNH, Tn, hs), att, dO, dv, 1.f, 0.f, ab);   // dv = Pᵀ·dO
  m.gemm(attention_dprobs_gemm(BNH, Tn, hs), dO, v, dP, 1.f, 0.f, ab);      // dP = dO·vᵀ
  PACI_CUDA_CHECK(launch_causal_softmax_backward(dS, att, bf, dP, static_cast<int64_t>(scores / Tn),
                                                 Tn, scale, m.stream));
  m.gemm(attention_dquery_gemm(BNH, Tn, hs), dS, k, dq, 1.f, 0.f, ab);      // dq = dS·k
  m.gemm(attention_dkey_gemm(BNH, Tn, hs), dS, q, dk, 1.f, 0.f, ab);        // dk = dSᵀ·q
  PACI_CUDA_CHECK(launch_from_heads(dqkv, C3, dq, B, Tn, C, NH, true, m.stream));
  PACI_CUDA_CHECK(launch_from_heads(dqkv + C, C3, dk, B, Tn, C, NH, true, m.stream));
  PACI_CUDA_CHECK(launch_from_heads(dqkv + 2 * C, C3, dv, B, Tn, C, NH, true, m.stream));
  m.after_op();
}

// ---- elementwise ----
void CudaBackend::gelu_forward(float* out, const float* in, size_t n) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(launch_gelu_forward(out, in, n, impl_->stream));
  impl_->after_op();
}
void CudaBackend::gelu_backward(float* din, const float* in, const float* dout, size_t n) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(launch_gelu_backward(din, in, dout, n, impl_->stream));
  impl_->after_op();
}
void CudaBackend::residual_forward(float* out, const float* a, const float* b, size_t n) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(launch_residual_forward(out, a, b, n, impl_->stream));
  impl_->after_op();
}
void CudaBackend::residual_backward(float* da, float* db, const float* dout, size_t n) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(launch_accumulate(da, dout, n, impl_->stream));
  PACI_CUDA_CHECK(launch_accumulate(db, dout, n, impl_->stream));
  impl_->after_op();
}
void CudaBackend::accumulate(float* dst, const float* src, size_t n) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(launch_accumulate(dst, src, n, impl_->stream));
  impl_->after_op();
}

// ---- embedding ----
void CudaBackend::embedding_forward(float* out, const int* tokens, const float* wte,
                                    const float* wpe, int B, int Tn, int C, int V) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  m.last_vocab = V;
  PACI_CUDA_CHECK(launch_embedding_forward(out, tokens, wte, wpe, B, Tn, C, V, m.err, m.stream));
  m.after_op();
}

void CudaBackend::embedding_backward(float* dwte, float* dwpe, const float* dout,
                                     const int* tokens, int B, int Tn, int C) {
  ScopedContext scope(impl_->ctx);
  Impl& m = *impl_;
  if (m.last_vocab <= 0) {
    throw std::logic_error(
        "CudaBackend::embedding_backward: no embedding_forward ran on this backend (the "
        "vocabulary size bounds the token rows it may write)");
  }
  const int N = B * Tn;
  const bool sorted = m.opt.deterministic;
  const size_t bytes = sorted ? embedding_backward_scratch_bytes(N) : 0;
  void* scratch = sorted ? m.get_scratch(bytes) : nullptr;
  PACI_CUDA_CHECK(launch_embedding_backward(dwte, dwpe, dout, tokens, B, Tn, C, m.last_vocab,
                                            sorted, scratch, bytes, m.err, m.stream));
  m.after_op();
}

// ---- softmax + cross-entropy ----
void CudaBackend::softmax_xent_forward(float* losses, float* probs, const float* logits,
                                       const int* targets, int N, int V) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(
      launch_softmax_xent_forward(losses, probs, logits, targets, N, V, impl_->err, impl_->stream));
  impl_->after_op();
}

void CudaBackend::softmax_xent_backward(float* dlogits, const float* probs, const int* targets,
                                        float dloss, int N, int V) {
  ScopedContext scope(impl_->ctx);
  PACI_CUDA_CHECK(
      launch_softmax_xent_backward(dlogits, probs, targets, dloss, N, V, impl_->stream));
  impl_->after_op();
}

// ---- AdamW ----
void CudaBackend::adamw_update(float* params, float* grads, float* m, float* v, size_t n,
                               double lr, double beta1, double beta2, double beta1_pow,
                               double beta2_pow, double eps, double weight_decay) {
  ScopedContext scope(impl_->ctx);
  const float c1 = static_cast<float>(1.0 / (1.0 - beta1_pow));
  const float c2 = static_cast<float>(1.0 / (1.0 - beta2_pow));
  PACI_CUDA_CHECK(launch_adamw(params, grads, m, v, n, static_cast<float>(lr),
                               static_cast<float>(beta1), static_cast<float>(beta2), c1, c2,
                               static_cast<float>(eps), static_cast<float>(weight_decay),
                               impl_->stream));
  impl_->after_op();
}

}  // namespace paci
