// cuda_selftest: every CudaBackend operation against the CPU backend on random inputs, in each
// precision, then whole-model parity (StageModel, preset "tiny"), a 2-stage = 1-stage bitwise
// check on two streams, and per-op / per-step timings at the gpt2-124m shape. Prints a table
// last. Exit: 0 all checks pass, 1 a check failed, 2 usage or CUDA error, 3 no CUDA device.
//
// Error measure: ‖gpu − ref‖₂ / ‖ref‖₂ over the whole output, in double, against the CPU
// backend (fp32 storage, reductions in double). Outputs that an operation WRITES are poisoned
// with NaN before the call, so an unwritten element shows up as non-finite (any non-finite
// value fails the row). Outputs that an operation ACCUMULATES into start from the same random
// values on both sides.
//
// Thresholds (relative L2), and why:
//  - fp32, every op: 1e-5 for elementwise/row-wise kernels (one or a few fp32 roundings,
//    u = 6e-8, plus tanhf/expf's 1–2 ulp); 1e-4 for GEMMs and attention (sums of up to
//    3072 products in a different order than OpenBLAS: ~√K·u ≈ 3e-6) and for the whole model.
//    A wrong index or a missed element gives errors of order 1.
//  - tf32: GEMM inputs rounded to 10 mantissa bits (u = 2^-11 ≈ 4.9e-4); for random-sign
//    data the relative error of a dot product is about u: threshold 2e-3 (4u) for one GEMM,
//    5e-3 for attention (three chained products), 1e-2 for the whole model's gradients.
//  - bf16: GEMM inputs rounded to 7 mantissa bits (u = 2^-8 ≈ 3.9e-3), fp32 accumulate:
//    threshold 1.5e-2 (4u) for one GEMM, 2.5e-2 for the attention forward and its bf16
//    probabilities (q, k, v and P rounded), 3e-2 for its backward (dO, dS rounded too), 5e-2
//    for the whole model's gradients. Each bf16 GEMM is ALSO checked against the CPU
//    computing on the same bf16-rounded inputs (bf16.h's round-to-nearest-even): that must
//    agree to fp32 accuracy (1e-4), which proves the fp32 accumulation and the argument
//    mapping exactly.
//  - Non-GEMM kernels are fp32 in every mode: the fp32 thresholds apply in all three.
//  - embedding_backward in deterministic mode must equal the CPU bit for bit (same order of
//    fp32 additions); repeat runs of the reducing ops must give identical bits (determinism).
//  - 2 stages on 2 backends (2 streams) must give the 1-stage loss and gradients bit for bit in
//    fp32 (the same GEMM shapes, fixed reduction splits). On 2 green contexts (half the SMs
//    each) the model must agree to 1e-4; bit equality is reported, not required (cuBLAS may
//    choose kernels by SM count). A bf16 GEMM on a green context with half the SMs must take
//    at least 0.7x the ideal SM ratio longer than on the whole GPU, else the partition does
//    not limit the SMs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec/cuda/bf16.h"
#include "exec/cuda/cuda_backend.h"
#include "exec/cuda/green_context.h"
#include "exec/cuda/sm_split.h"
#include "exec/model/config.h"
#include "exec/model/cpu_backend.h"
#include "exec/model/partition.h"
#include "exec/model/stage_model.h"

namespace {

using paci::CpuBackend;
using paci::CudaBackend;
using paci::CudaBackendOptions;
using paci::CudaPrecision;
using paci::cuda::round_to_bf16;

struct Row {
  std::string prec, op;
  double err = 0.0, thresh = 0.0;
  size_t nonfinite = 0;
  bool pass = false;
  std::string note;
};
std::vector<Row> g_rows;

struct TimeRow {
  std::string prec, what;
  double ms = 0.0;
  double tflops = 0.0;  // 0: not a FLOP-counted row
  std::string note;
};
std::vector<TimeRow> g_times;

// Every row is also printed (and flushed) the moment it is produced, so a run killed by a
// timeout still leaves what it measured in its output; the tables at exit repeat them.
void push_row(const Row& r) {
  g_rows.push_back(r);
  std::printf("[check] %-18s %-52s %10.2e %9.1e %4zu %-4s  %s\n", r.prec.c_str(), r.op.c_str(), r.err,
              r.thresh, r.nonfinite, r.pass ? "ok" : "FAIL", r.note.c_str());
  std::fflush(stdout);
}
void push_time(const TimeRow& t) {
  g_times.push_back(t);
  std::printf("[time]  %-5s %-52s %10.3f %9.1f  %s\n", t.prec.c_str(), t.what.c_str(), t.ms, t.tflops,
              t.note.c_str());
  std::fflush(stdout);
}

double rel_l2(const std::vector<float>& got, const std::vector<float>& ref, size_t* nonfinite) {
  double num = 0.0, den = 0.0;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) {
      if (std::isfinite(ref[i])) ++bad;
      continue;
    }
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  if (nonfinite) *nonfinite = bad;
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

void record(const std::string& prec, const std::string& op, const std::vector<float>& got,
            const std::vector<float>& ref, double thresh, const std::string& note = "") {
  Row r;
  r.prec = prec;
  r.op = op;
  r.thresh = thresh;
  r.err = rel_l2(got, ref, &r.nonfinite);
  r.pass = r.nonfinite == 0 && r.err <= thresh && got.size() == ref.size();
  r.note = note;
  push_row(r);
}

void record_bool(const std::string& prec, const std::string& op, bool ok,
                 const std::string& note) {
  Row r;
  r.prec = prec;
  r.op = op;
  r.pass = ok;
  r.err = ok ? 0.0 : 1.0;
  r.thresh = 0.0;
  r.note = note;
  push_row(r);
}

// Runs one section; an exception becomes a failed row (the table is still printed).
void guarded(const std::string& prec, const std::string& what, const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    record_bool(prec, what + " (aborted)", false, e.what());
    std::fprintf(stderr, "%s %s: %s\n", prec.c_str(), what.c_str(), e.what());
  }
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Device buffers owned by the test, freed at scope end.
class Gpu {
 public:
  explicit Gpu(CudaBackend& be) : be_(be) {}
  ~Gpu() {
    for (void* p : ptrs_) be_.free(p);  // never throws
  }
  float* up(const std::vector<float>& h) {
    float* p = static_cast<float*>(alloc(h.size() * sizeof(float)));
    be_.from_host(p, h.data(), h.size() * sizeof(float));
    return p;
  }
  int* up(const std::vector<int>& h) {
    int* p = static_cast<int*>(alloc(h.size() * sizeof(int)));
    be_.from_host(p, h.data(), h.size() * sizeof(int));
    return p;
  }
  // NaN as a float and as each of its two bf16 halves (0x7fc0), so bf16 outputs written
  // into float buffers are poisoned too.
  float* poisoned(size_t n) {
    return up(std::vector<float>(n, paci::cuda::bits_float(0x7fc07fc0u)));
  }
  std::vector<float> down(const float* p, size_t n) {
    std::vector<float> h(n);
    be_.to_host(h.data(), p, n * sizeof(float));
    return h;
  }
  void* alloc(size_t bytes) {
    void* p = be_.alloc(bytes);
    ptrs_.push_back(p);
    return p;
  }

 private:
  CudaBackend& be_;
  std::vector<void*> ptrs_;
};

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  std::vector<float> normal(size_t n, float scale = 1.f, float mean = 0.f) {
    std::normal_distribution<float> d(mean, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(gen);
    return v;
  }
  std::vector<float> uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(gen);
    return v;
  }
  std::vector<int> ints(size_t n, int lo, int hi) {
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<int> v(n);
    for (int& x : v) x = d(gen);
    return v;
  }
};

std::vector<float> rounded_bf16(std::vector<float> v) {
  for (float& x : v) x = round_to_bf16(x);
  return v;
}

struct Shape {
  std::string name;
  int B, T, C, NH, V;
  int N() const { return B * T; }
};

struct Tol {
  double ew, gemm, att_fwd, att_bwd, model;
};

Tol tolerances(CudaPrecision p) {
  switch (p) {
    case CudaPrecision::kFp32:
      return {1e-5, 1e-4, 1e-4, 1e-4, 1e-4};
    case CudaPrecision::kTf32:
      return {1e-5, 2e-3, 5e-3, 5e-3, 1e-2};
    case CudaPrecision::kBf16:
      return {1e-5, 1.5e-2, 2.5e-2, 3e-2, 5e-2};
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
void test_ops(CudaBackend& gpu, CpuBackend& cpu, CudaPrecision prec, const Shape& s,
              uint64_t seed) {
  const std::string P = std::string(paci::precision_name(prec)) + " " + s.name;
  const Tol tol = tolerances(prec);
  const bool bf = prec == CudaPrecision::kBf16;
  Rng rng(seed);
  Gpu g(gpu);
  const int N = s.N(), C = s.C, B = s.B, T = s.T, NH = s.NH, V = s.V;
  const size_t NC = static_cast<size_t>(N) * C;

  // ---- matmuls: (IC, OC) = (C, 3C) and (4C, C) ----
  for (auto io : {std::pair<int, int>{C, 3 * C}, std::pair<int, int>{4 * C, C}}) {
    const int IC = io.first, OC = io.second;
    const std::string dims = "[" + std::to_string(N) + "x" + std::to_string(IC) + "->" +
                             std::to_string(OC) + "]";
    auto in = rng.uniform(static_cast<size_t>(N) * IC, -1, 1);
    auto w = rng.uniform(static_cast<size_t>(OC) * IC, -1, 1);
    auto bias = rng.uniform(OC, -1, 1);
    auto dout = rng.uniform(static_cast<size_t>(N) * OC, -1, 1);
    auto din0 = rng.uniform(static_cast<size_t>(N) * IC, -1, 1);
    auto dw0 = rng.uniform(static_cast<size_t>(OC) * IC, -1, 1);
    auto db0 = rng.uniform(OC, -1, 1);
    float* d_in = g.up(in);
    float* d_w = g.up(w);
    float* d_bias = g.up(bias);
    float* d_dout = g.up(dout);
    auto check = [&](const std::string& op, const std::vector<float>& got,
                     const std::function<std::vector<float>(bool)>& ref) {
      record(P, op + dims, got, ref(false), tol.gemm);
      if (bf) record(P, op + dims + " vs bf16-rounded inputs", got, ref(true), 1e-4);
    };
    // forward, with and without bias
    for (bool with_bias : {true, false}) {
      float* d_out = g.poisoned(static_cast<size_t>(N) * OC);
      gpu.matmul_forward(d_out, d_in, d_w, with_bias ? d_bias : nullptr, N, IC, OC);
      auto got = g.down(d_out, static_cast<size_t>(N) * OC);
      check(with_bias ? "matmul_forward+bias" : "matmul_forward", got, [&](bool r) {
        std::vector<float> out(static_cast<size_t>(N) * OC);
        auto a = r ? rounded_bf16(in) : in;
        auto b = r ? rounded_bf16(w) : w;
        cpu.matmul_forward(out.data(), a.data(), b.data(), with_bias ? bias.data() : nullptr, N,
                           IC, OC);
        return out;
      });
    }
    {
      // an input that is not 16-byte aligned (the scalar paths of the casts and kernels)
      std::vector<float> padded(in.size() + 1, 0.f);
      std::copy(in.begin(), in.end(), padded.begin() + 1);
      float* d_in1 = g.up(padded) + 1;
      float* d_out = g.poisoned(static_cast<size_t>(N) * OC);
      gpu.matmul_forward(d_out, d_in1, d_w, d_bias, N, IC, OC);
      auto got = g.down(d_out, static_cast<size_t>(N) * OC);
      check("matmul_forward+bias (misaligned input)", got, [&](bool r) {
        std::vector<float> out(static_cast<size_t>(N) * OC);
        auto a = r ? rounded_bf16(in) : in;
        auto b = r ? rounded_bf16(w) : w;
        cpu.matmul_forward(out.data(), a.data(), b.data(), bias.data(), N, IC, OC);
        return out;
      });
    }
    {
      float* d_din = g.up(din0);
      gpu.matmul_backward_input(d_din, d_dout, d_w, N, IC, OC);
      auto got = g.down(d_din, din0.size());
      check("matmul_backward_input", got, [&](bool r) {
        auto out = din0;
        auto a = r ? rounded_bf16(dout) : dout;
        auto b = r ? rounded_bf16(w) : w;
        cpu.matmul_backward_input(out.data(), a.data(), b.data(), N, IC, OC);
        return out;
      });
    }
    {
      float* d_dw = g.up(dw0);
      float* d_db = g.up(db0);
      gpu.matmul_backward_weight(d_dw, d_db, d_dout, d_in, N, IC, OC);
      auto got_w = g.down(d_dw, dw0.size());
      auto got_b = g.down(d_db, db0.size());
      check("matmul_backward_weight.dw", got_w, [&](bool r) {
        auto out = dw0;
        auto bb = db0;
        auto a = r ? rounded_bf16(dout) : dout;
        auto b = r ? rounded_bf16(in) : in;
        cpu.matmul_backward_weight(out.data(), bb.data(), a.data(), b.data(), N, IC, OC);
        return out;
      });
      auto ref_b = db0;
      {
        auto tmp = dw0;
        cpu.matmul_backward_weight(tmp.data(), ref_b.data(), dout.data(), in.data(), N, IC, OC);
      }
      record(P, "matmul_backward_weight.dbias" + dims, got_b, ref_b, tol.ew);
      // repeatability: same call again from the same start → same bits
      float* d_dw2 = g.up(dw0);
      float* d_db2 = g.up(db0);
      gpu.matmul_backward_weight(d_dw2, d_db2, d_dout, d_in, N, IC, OC);
      record_bool(P, "matmul_backward_weight repeat" + dims,
                  bits_equal(got_w, g.down(d_dw2, dw0.size())) &&
                      bits_equal(got_b, g.down(d_db2, db0.size())),
                  "bitwise");
    }
  }

  // ---- LayerNorm ----
  {
    auto in = rng.normal(NC, 2.f, 0.5f);
    auto w = rng.uniform(C, 0.5f, 1.5f);
    auto b = rng.uniform(C, -0.5f, 0.5f);
    float* d_in = g.up(in);
    float* d_w = g.up(w);
    float* d_b = g.up(b);
    float* d_out = g.poisoned(NC);
    float* d_mean = g.poisoned(N);
    float* d_rstd = g.poisoned(N);
    gpu.layernorm_forward(d_out, d_mean, d_rstd, d_in, d_w, d_b, N, C);
    std::vector<float> out(NC), mean(N), rstd(N);
    cpu.layernorm_forward(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), N,
                          C);
    record(P, "layernorm_forward.out", g.down(d_out, NC), out, tol.ew);
    record(P, "layernorm_forward.mean", g.down(d_mean, N), mean, tol.ew);
    record(P, "layernorm_forward.rstd", g.down(d_rstd, N), rstd, tol.ew);

    auto dout = rng.normal(NC);
    auto din0 = rng.normal(NC);
    float* d_dout = g.up(dout);
    float* d_din = g.up(din0);
    // backward from the CPU's statistics on both sides (isolates the backward kernels)
    float* d_mean_c = g.up(mean);
    float* d_rstd_c = g.up(rstd);
    gpu.layernorm_backward_input(d_din, d_dout, d_in, d_w, d_mean_c, d_rstd_c, N, C);
    auto din = din0;
    cpu.layernorm_backward_input(din.data(), dout.data(), in.data(), w.data(), mean.data(),
                                 rstd.data(), N, C);
    record(P, "layernorm_backward_input", g.down(d_din, NC), din, tol.ew);

    auto dw0 = rng.normal(C), db0 = rng.normal(C);
    float* d_dw = g.up(dw0);
    float* d_db = g.up(db0);
    gpu.layernorm_backward_params(d_dw, d_db, d_dout, d_in, d_mean_c, d_rstd_c, N, C);
    auto dw = dw0, db = db0;
    cpu.layernorm_backward_params(dw.data(), db.data(), dout.data(), in.data(), mean.data(),
                                  rstd.data(), N, C);
    record(P, "layernorm_backward_params.dw", g.down(d_dw, C), dw, tol.ew);
    record(P, "layernorm_backward_params.db", g.down(d_db, C), db, tol.ew);
  }

  // ---- attention ----
  {
    auto qkv = rng.normal(NC * 3);
    float* d_qkv = g.up(qkv);
    const size_t cpu_state = cpu.attention_state_elems(B, T, C, NH);
    const size_t gpu_state = gpu.attention_state_elems(B, T, C, NH);
    float* d_out = g.poisoned(NC);
    float* d_att = g.poisoned(gpu_state);
    gpu.attention_forward(d_out, d_att, d_qkv, B, T, C, NH);
    std::vector<float> out(NC), att(cpu_state);
    cpu.attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    record(P, "attention_forward.out", g.down(d_out, NC), out, tol.att_fwd);
    auto raw = g.down(d_att, gpu_state);
    std::vector<float> probs(cpu_state);
    if (bf) {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(raw.data());
      for (size_t i = 0; i < cpu_state; ++i) probs[i] = paci::cuda::bf16_bits_to_float(h[i]);
    } else {
      probs = raw;
    }
    record(P, "attention_forward.P (state)", probs, att, tol.att_fwd,
           bf ? "bf16 state: u=2^-8" : "");

    auto dout = rng.normal(NC);
    auto dqkv0 = rng.normal(NC * 3);
    float* d_dout = g.up(dout);
    float* d_dqkv = g.up(dqkv0);
    gpu.attention_backward(d_dqkv, d_dout, d_qkv, d_att, B, T, C, NH);
    auto got = g.down(d_dqkv, NC * 3);
    auto dqkv = dqkv0;
    cpu.attention_backward(dqkv.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH);
    // Compare the increments (dqkv − dqkv0): the random start would hide small errors.
    std::vector<float> inc_got(NC * 3), inc_ref(NC * 3);
    for (size_t i = 0; i < NC * 3; ++i) {
      inc_got[i] = got[i] - dqkv0[i];
      inc_ref[i] = dqkv[i] - dqkv0[i];
    }
    record(P, "attention_backward (dqkv increment)", inc_got, inc_ref, tol.att_bwd);
    float* d_dqkv2 = g.up(dqkv0);
    gpu.attention_backward(d_dqkv2, d_dout, d_qkv, d_att, B, T, C, NH);
    record_bool(P, "attention_backward repeat", bits_equal(got, g.down(d_dqkv2, NC * 3)),
                "bitwise");
  }

  // ---- elementwise ----
  {
    const size_t n = NC * 4 + 3;  // odd length: exercises the scalar tail
    auto x = rng.normal(n, 2.f);
    auto y = rng.normal(n);
    auto z0 = rng.normal(n);
    float* d_x = g.up(x);
    float* d_y = g.up(y);
    float* d_out = g.poisoned(n);
    gpu.gelu_forward(d_out, d_x, n);
    std::vector<float> out(n);
    cpu.gelu_forward(out.data(), x.data(), n);
    record(P, "gelu_forward", g.down(d_out, n), out, tol.ew);
    float* d_din = g.up(z0);
    gpu.gelu_backward(d_din, d_x, d_y, n);
    auto din = z0;
    cpu.gelu_backward(din.data(), x.data(), y.data(), n);
    record(P, "gelu_backward", g.down(d_din, n), din, tol.ew);
    // misaligned views (offset by one float): the scalar path
    float* d_out2 = g.poisoned(n);
    gpu.gelu_forward(d_out2 + 1, d_x + 1, n - 1);
    auto got2 = g.down(d_out2, n);
    got2.erase(got2.begin());
    std::vector<float> ref2(out.begin() + 1, out.end());
    record(P, "gelu_forward (misaligned)", got2, ref2, tol.ew);

    float* d_r = g.poisoned(n);
    gpu.residual_forward(d_r, d_x, d_y, n);
    std::vector<float> r(n);
    cpu.residual_forward(r.data(), x.data(), y.data(), n);
    record(P, "residual_forward", g.down(d_r, n), r, tol.ew);
    float* d_y2 = g.up(y);
    gpu.residual_forward(d_y2, d_x, d_y2, n);  // out aliases b, as StageModel does
    record(P, "residual_forward (out=b)", g.down(d_y2, n), r, tol.ew);

    float* d_da = g.up(z0);
    float* d_db = g.up(x);
    gpu.residual_backward(d_da, d_db, d_y, n);
    auto da = z0, db = x;
    cpu.residual_backward(da.data(), db.data(), y.data(), n);
    record(P, "residual_backward.da", g.down(d_da, n), da, tol.ew);
    record(P, "residual_backward.db", g.down(d_db, n), db, tol.ew);
    float* d_acc = g.up(z0);
    gpu.accumulate(d_acc, d_y, n);
    auto acc = z0;
    cpu.accumulate(acc.data(), y.data(), n);
    record(P, "accumulate", g.down(d_acc, n), acc, tol.ew);
  }

  // ---- embedding ----
  {
    const int Vsmall = std::min(V, 97);  // few distinct tokens: many repeats in backward
    auto tokens = rng.ints(N, 0, Vsmall - 1);
    auto wte = rng.normal(static_cast<size_t>(V) * C);
    auto wpe = rng.normal(static_cast<size_t>(T) * C);
    int* d_tok = g.up(tokens);
    float* d_wte = g.up(wte);
    float* d_wpe = g.up(wpe);
    float* d_out = g.poisoned(NC);
    gpu.embedding_forward(d_out, d_tok, d_wte, d_wpe, B, T, C, V);
    std::vector<float> out(NC);
    cpu.embedding_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C, V);
    auto got = g.down(d_out, NC);
    record(P, "embedding_forward", got, out, 0.0, bits_equal(got, out) ? "bitwise" : "");

    auto dout = rng.normal(NC);
    auto dwte0 = rng.normal(static_cast<size_t>(V) * C, 0.1f);
    auto dwpe0 = rng.normal(static_cast<size_t>(T) * C, 0.1f);
    float* d_dout = g.up(dout);
    float* d_dwte = g.up(dwte0);
    float* d_dwpe = g.up(dwpe0);
    gpu.embedding_backward(d_dwte, d_dwpe, d_dout, d_tok, B, T, C);
    auto dwte = dwte0, dwpe = dwpe0;
    cpu.embedding_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
    auto got_te = g.down(d_dwte, dwte.size());
    auto got_pe = g.down(d_dwpe, dwpe.size());
    const bool det = gpu.options().deterministic;
    record(P, "embedding_backward.dwte", got_te, dwte, det ? 0.0 : tol.ew,
           det ? (bits_equal(got_te, dwte) ? "bitwise = CPU" : "NOT bitwise") : "atomics");
    record(P, "embedding_backward.dwpe", got_pe, dwpe, 0.0,
           bits_equal(got_pe, dwpe) ? "bitwise = CPU" : "NOT bitwise");

    // range check: a token outside [0, V) must surface as std::out_of_range
    auto bad = tokens;
    bad[N / 2] = V + 5;
    int* d_bad = g.up(bad);
    bool thrown = false;
    try {
      gpu.embedding_forward(d_out, d_bad, d_wte, d_wpe, B, T, C, V);
      gpu.synchronize();
    } catch (const std::out_of_range&) {
      thrown = true;
    }
    record_bool(P, "embedding token range check", thrown, "out_of_range at synchronize");
  }

  // ---- softmax + cross-entropy, in place as StageModel uses it ----
  {
    const int Nx = std::min(N, 256);
    const size_t NV = static_cast<size_t>(Nx) * V;
    auto logits = rng.normal(NV, 3.f);
    auto targets = rng.ints(Nx, 0, V - 1);
    float* d_probs = g.up(logits);
    int* d_t = g.up(targets);
    float* d_loss = g.poisoned(Nx);
    gpu.softmax_xent_forward(d_loss, d_probs, d_probs, d_t, Nx, V);
    std::vector<float> probs = logits, loss(Nx);
    cpu.softmax_xent_forward(loss.data(), probs.data(), probs.data(), targets.data(), Nx, V);
    record(P, "softmax_xent_forward.loss", g.down(d_loss, Nx), loss, tol.ew);
    record(P, "softmax_xent_forward.probs (in place)", g.down(d_probs, NV), probs, tol.ew);
    const float dloss = 1.0f / Nx;
    gpu.softmax_xent_backward(d_probs, d_probs, d_t, dloss, Nx, V);
    cpu.softmax_xent_backward(probs.data(), probs.data(), targets.data(), dloss, Nx, V);
    record(P, "softmax_xent_backward (in place)", g.down(d_probs, NV), probs, tol.ew);
  }

  // ---- AdamW ----
  {
    const size_t n = 100003;
    auto p = rng.normal(n), gr = rng.normal(n, 0.1f), m = rng.normal(n, 0.01f);
    auto v = rng.uniform(n, 0.f, 1e-3f);
    float* dp = g.up(p);
    float* dg = g.up(gr);
    float* dm = g.up(m);
    float* dv = g.up(v);
    const double b1 = 0.9, b2 = 0.95;
    gpu.adamw_update(dp, dg, dm, dv, n, 3e-4, b1, b2, std::pow(b1, 7), std::pow(b2, 7), 1e-8, 0.1);
    cpu.adamw_update(p.data(), gr.data(), m.data(), v.data(), n, 3e-4, b1, b2, std::pow(b1, 7),
                     std::pow(b2, 7), 1e-8, 0.1);
    record(P, "adamw_update.params", g.down(dp, n), p, tol.ew);
    record(P, "adamw_update.m", g.down(dm, n), m, tol.ew);
    record(P, "adamw_update.v", g.down(dv, n), v, tol.ew);
  }
}

// ---------------------------------------------------------------------------------------------
// Whole-model parity: StageModel("tiny") forward + backward on the CPU and on the GPU.
void test_model(CudaBackend& gpu, CpuBackend& cpu, CudaPrecision prec, uint64_t seed) {
  const std::string P = std::string(paci::precision_name(prec)) + " model tiny";
  const Tol tol = tolerances(prec);
  auto cfg = paci::preset("tiny");
  const int B = 4, T = cfg.seq_len;
  auto part = paci::balanced_partition(cfg, 1)[0];
  paci::StageModel mc(cpu, cfg, part, B, T, 1, seed);
  paci::StageModel mg(gpu, cfg, part, B, T, 1, seed);
  Rng rng(seed + 1);
  auto tokens = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  auto targets = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  const float lc = mc.forward(0, mc.params(), tokens.data(), nullptr, targets.data(), nullptr);
  const float lg = mg.forward(0, mg.params(), tokens.data(), nullptr, targets.data(), nullptr);
  record(P, "loss", {lg}, {lc}, prec == CudaPrecision::kFp32 ? 1e-5 : tol.model / 5,
         "cpu " + std::to_string(lc) + " gpu " + std::to_string(lg));
  mc.backward(0, mc.params(), nullptr, nullptr, 1.0f);
  mg.backward(0, mg.params(), nullptr, nullptr, 1.0f);
  std::vector<float> gg(mg.param_count());
  gpu.to_host(gg.data(), mg.grads(), mg.param_bytes());
  std::vector<float> gc(mc.grads(), mc.grads() + mc.param_count());
  record(P, "all gradients", gg, gc, tol.model);
  // worst single tensor
  double worst = 0.0;
  std::string worst_name;
  for (const auto& t : mc.layout().tensors) {
    std::vector<float> a(gg.begin() + t.offset, gg.begin() + t.offset + t.size);
    std::vector<float> b(gc.begin() + t.offset, gc.begin() + t.offset + t.size);
    const double e = rel_l2(a, b, nullptr);
    if (e > worst) {
      worst = e;
      worst_name = t.name;
    }
  }
  Row r;  // informative; 4x the whole-vector threshold
  r.prec = P;
  r.op = "worst tensor gradient";
  r.err = worst;
  r.thresh = 4 * tol.model;
  r.pass = worst <= 4 * tol.model;
  r.note = worst_name + " rel " + std::to_string(worst);
  push_row(r);
}

// Two stages on two backends (two streams) must give the 1-stage bits (fp32, deterministic).
void test_split(uint64_t seed) {
  const std::string P = "fp32 det";
  auto cfg = paci::preset("tiny");
  const int B = 4, T = cfg.seq_len;
  CudaBackendOptions o;
  o.precision = CudaPrecision::kFp32;
  CudaBackend one(o), a(o), b(o);
  auto whole = paci::balanced_partition(cfg, 1)[0];
  auto parts = paci::balanced_partition(cfg, 2);
  paci::StageModel m1(one, cfg, whole, B, T, 1, seed);
  paci::StageModel s0(a, cfg, parts[0], B, T, 1, seed);
  paci::StageModel s1(b, cfg, parts[1], B, T, 1, seed);
  Rng rng(seed + 2);
  auto tokens = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  auto targets = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  const float l1 = m1.forward(0, m1.params(), tokens.data(), nullptr, targets.data(), nullptr);
  m1.backward(0, m1.params(), nullptr, nullptr, 1.0f);
  float* x = static_cast<float*>(a.alloc(s0.boundary_elems() * sizeof(float)));
  float* dx = static_cast<float*>(b.alloc(s1.boundary_elems() * sizeof(float)));
  s0.forward(0, s0.params(), tokens.data(), nullptr, nullptr, x);
  a.synchronize();  // the event a runtime would record on stream a
  const float l2 = s1.forward(0, s1.params(), nullptr, x, targets.data(), nullptr);
  s1.backward(0, s1.params(), nullptr, dx, 1.0f);
  b.synchronize();
  s0.backward(0, s0.params(), dx, nullptr, 1.0f);
  a.synchronize();
  bool same = std::memcmp(&l1, &l2, sizeof(float)) == 0;
  std::vector<float> g1(m1.param_count());
  one.to_host(g1.data(), m1.grads(), m1.param_bytes());
  size_t diff_tensors = 0;
  for (paci::StageModel* s : {&s0, &s1}) {
    std::vector<float> gs(s->param_count());
    s->backend().to_host(gs.data(), s->grads(), s->param_bytes());
    for (const auto& t : s->layout().tensors) {
      const paci::TensorInfo* w = m1.layout().find(t.name);
      if (!w || std::memcmp(gs.data() + t.offset, g1.data() + w->offset, t.size * 4) != 0) {
        ++diff_tensors;
      }
    }
  }
  a.free(x);
  b.free(dx);
  record_bool(P, "2 stages (2 streams) = 1 stage, bitwise",
              same && diff_tensors == 0,
              "loss " + std::string(same ? "same bits" : "differs") + ", " +
                  std::to_string(diff_tensors) + " gradient tensors differ");
}


// The backend's plumbing: the block pool (free keeps a block, alloc of the same size reuses it
// zero-filled), from_host through the page-locked ring (the caller's buffer is reusable at
// once: every upload must hold the values at the call, across more uploads than slots), and
// the memory counters.
void test_plumbing() {
  const std::string P = "plumbing";
  CudaBackendOptions o;
  CudaBackend be(o);
  const size_t n = 1000;
  auto* a = static_cast<float*>(be.alloc(n * sizeof(float)));
  std::vector<float> ones(n, 1.0f), back(n, -1.0f);
  be.from_host(a, ones.data(), n * sizeof(float));
  be.synchronize();
  be.free(a);
  const auto m1 = be.memory();
  auto* b = static_cast<float*>(be.alloc(n * sizeof(float)));
  const auto m2 = be.memory();
  be.to_host(back.data(), b, n * sizeof(float));
  bool zero = true;
  for (float x : back) zero &= x == 0.0f;
  record_bool(P, "pool: same-size alloc reuses the freed block", a == b,
              "cached after free " + std::to_string(m1.cached_bytes) + " B, after alloc " +
                  std::to_string(m2.cached_bytes) + " B");
  record_bool(P, "pool: a reused block is zero-filled", zero, "");
  record_bool(P, "pool: counters", m1.cached_bytes >= 4096 && m2.cached_bytes + 4096 == m1.cached_bytes &&
                                       m2.user_bytes >= 4096 && m2.peak_user_bytes >= m2.user_bytes,
              "4000 B round to 4096 B; user " + std::to_string(m2.user_bytes) + " B");
  // 10 uploads of 64 Ki ints into 10 buffers through 4 slots, the host buffer rewritten at once.
  const size_t k = 64 * 1024;
  std::vector<int*> dev;
  std::vector<int> host(k);
  for (int u = 0; u < 10; ++u) {
    dev.push_back(static_cast<int*>(be.alloc(k * sizeof(int))));
    for (size_t i = 0; i < k; ++i) host[i] = static_cast<int>(i) * 10 + u;
    be.from_host(dev.back(), host.data(), k * sizeof(int));
    std::fill(host.begin(), host.end(), -7);  // the caller reuses its buffer at once
  }
  size_t wrong = 0;
  std::vector<int> got(k);
  for (int u = 0; u < 10; ++u) {
    be.to_host(got.data(), dev[u], k * sizeof(int));
    for (size_t i = 0; i < k; ++i) wrong += got[i] != static_cast<int>(i) * 10 + u;
    be.free(dev[u]);
  }
  record_bool(P, "from_host staging: 10 uploads through 4 slots", wrong == 0,
              std::to_string(wrong) + " wrong elements");
  be.free(b);
}

// Green contexts (--sm-partition): the driver's SM rules, two contexts of equal size, the tiny
// model as 2 stages on them vs 1 stage on the whole GPU, and a GEMM timed on half the SMs.
double time_ms(CudaBackend& be, int warm, int reps, const std::function<void()>& f);

void test_green(uint64_t seed) {
  using namespace paci::cuda;
  const std::string P = "green ctx";
  const auto info = CudaBackend::device_info(0);
  DeviceSmResource r = query_sm_resource(0);
  const SmSplitRules guide = green_context_rules(info.cc_major, info.cc_minor);
  const int unit = sm_unit(r.rules());
  r = query_sm_resource(0, unit);
  char note[256];
  std::snprintf(note, sizeof note,
                "driver: %d SMs, min partition %d, alignment %d, %d groups of %d; cuda.h guideline "
                "min %d align %d",
                r.sm_count, r.min_partition_size, r.coscheduled_alignment, r.groups_of_unit, unit,
                guide.min_count, guide.alignment);
  record_bool(P, "SM resource (informative)", true, note);
  const SmSplit split = equal_sm_split(r.sm_count, 2, r.rules(), r.groups_of_unit);
  GreenContexts gc(0, split);
  record_bool(P, "2 green contexts = planned split",
              gc.sm_count(0) == split.sms[0] && gc.sm_count(1) == split.sms[1],
              gc.describe() + " vs plan " + split.describe());

  auto cfg = paci::preset("tiny");
  const int B = 4, T = cfg.seq_len;
  CudaBackendOptions o;
  o.precision = CudaPrecision::kFp32;
  CudaBackend one(o);
  one.bind_thread();
  void* const primary = current_context();
  o.cu_context = gc.context(0);
  CudaBackend a(o);
  o.cu_context = gc.context(1);
  CudaBackend b(o);
  {
    // Constructors, alloc and free push the backend's green context and pop it again.
    const bool after_ctor = current_context() == primary;
    void* p = a.alloc(4096);
    const bool after_alloc = current_context() == primary;
    a.free(p);
    b.zero(b.alloc(256), 256);
    const bool after_ops = current_context() == primary;
    record_bool(P, "caller's context kept (ctor, alloc, free, ops)", after_ctor && after_alloc && after_ops,
                std::string(after_ctor ? "" : "ctor ") + (after_alloc ? "" : "alloc ") + (after_ops ? "" : "ops"));
  }
  auto whole = paci::balanced_partition(cfg, 1)[0];
  auto parts = paci::balanced_partition(cfg, 2);
  Rng rng(seed + 3);
  auto tokens = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  auto targets = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  one.bind_thread();
  paci::StageModel m1(one, cfg, whole, B, T, 1, seed);
  const float l1 = m1.forward(0, m1.params(), tokens.data(), nullptr, targets.data(), nullptr);
  m1.backward(0, m1.params(), nullptr, nullptr, 1.0f);
  std::vector<float> g1(m1.param_count());
  one.to_host(g1.data(), m1.grads(), m1.param_bytes());
  a.bind_thread();
  paci::StageModel s0(a, cfg, parts[0], B, T, 1, seed);
  float* x = static_cast<float*>(a.alloc(s0.boundary_elems() * sizeof(float)));
  b.bind_thread();
  paci::StageModel s1(b, cfg, parts[1], B, T, 1, seed);
  float* dx = static_cast<float*>(b.alloc(s1.boundary_elems() * sizeof(float)));
  a.bind_thread();
  s0.forward(0, s0.params(), tokens.data(), nullptr, nullptr, x);
  a.synchronize();
  b.bind_thread();
  const float l2 = s1.forward(0, s1.params(), nullptr, x, targets.data(), nullptr);
  s1.backward(0, s1.params(), nullptr, dx, 1.0f);
  b.synchronize();
  a.bind_thread();
  s0.backward(0, s0.params(), dx, nullptr, 1.0f);
  a.synchronize();
  std::vector<float> got, ref;
  bool bitwise = std::memcmp(&l1, &l2, sizeof(float)) == 0;
  for (paci::StageModel* st : {&s0, &s1}) {
    st->backend().synchronize();
    std::vector<float> gs(st->param_count());
    static_cast<CudaBackend&>(st->backend()).bind_thread();
    st->backend().to_host(gs.data(), st->grads(), st->param_bytes());
    for (const auto& t : st->layout().tensors) {
      const paci::TensorInfo* w = m1.layout().find(t.name);
      if (!w) continue;
      got.insert(got.end(), gs.begin() + t.offset, gs.begin() + t.offset + t.size);
      ref.insert(ref.end(), g1.begin() + w->offset, g1.begin() + w->offset + w->size);
    }
  }
  bitwise = bitwise && bits_equal(got, ref);
  record("fp32 " + P, "2 stages on green ctxs vs 1 stage: gradients", got, ref, 1e-4,
         bitwise ? "bitwise equal (loss too)" : "not bitwise (cuBLAS may pick per-SM-count kernels)");
  a.bind_thread();
  a.free(x);
  b.bind_thread();
  b.free(dx);

  // A compute-bound GEMM on the whole GPU and on one green context of half the SMs.
  const int N = 8192, IC = 768, OC = 3072;
  CudaBackendOptions ob;
  ob.precision = CudaPrecision::kBf16;
  double ms[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    ob.cu_context = k == 0 ? nullptr : gc.context(0);
    CudaBackend be(ob);
    be.bind_thread();
    Gpu g(be);
    float* in = g.up(rng.normal(static_cast<size_t>(N) * IC));
    float* w = g.up(rng.normal(static_cast<size_t>(OC) * IC));
    float* out = static_cast<float*>(g.alloc(static_cast<size_t>(N) * OC * 4));
    ms[k] = time_ms(be, 3, 10, [&] { be.matmul_forward(out, in, w, nullptr, N, IC, OC); });
    const double tf = 2.0 * N * IC * OC / (ms[k] * 1e-3) / 1e12;
    push_time({"bf16", std::string("matmul_forward 8192x768->3072 on ") +
                                   (k == 0 ? "all SMs" : std::to_string(gc.sm_count(0)) + " SMs (green)"),
                       ms[k], tf, ""});
  }
  const double ideal = static_cast<double>(info.sm_count) / gc.sm_count(0);
  std::snprintf(note, sizeof note, "%.2fx the all-SM time (ideal %.2fx)", ms[1] / ms[0], ideal);
  record_bool(P, "green context limits the SMs a GEMM uses", ms[1] / ms[0] > 0.7 * ideal, note);
  one.bind_thread();  // back to the primary context for whatever runs next
}

// ---------------------------------------------------------------------------------------------
// Median over 5 batches of the mean time of `reps` back-to-back calls (one synchronize per
// batch, so the host-device round trip is amortised), after `warm` calls.
double time_ms(CudaBackend& be, int warm, int reps, const std::function<void()>& f) {
  for (int i = 0; i < warm; ++i) f();
  be.synchronize();
  std::vector<double> v;
  for (int k = 0; k < 5; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) f();
    be.synchronize();
    v.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count() /
                reps);
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void bench(CudaBackend& gpu, CudaPrecision prec, int B, uint64_t seed) {
  const std::string P = paci::precision_name(prec);
  auto cfg = paci::preset("gpt2-124m");
  const int T = cfg.seq_len, C = cfg.channels, NH = cfg.heads, V = cfg.vocab_size;
  const int N = B * T;
  Rng rng(seed);
  Gpu g(gpu);
  const size_t NC = static_cast<size_t>(N) * C;
  float* x = g.up(rng.normal(NC * 4, 0.5f));
  float* y = g.up(rng.normal(NC * 4, 0.5f));
  float* w = g.up(rng.normal(static_cast<size_t>(C) * 4 * C, 0.02f));
  float* bias = g.up(rng.normal(4 * C, 0.02f));
  auto gemm_row = [&](const std::string& what, int IC, int OC, const std::function<void()>& f) {
    const double ms = time_ms(gpu, 3, 10, f);
    push_time({P, what + " " + std::to_string(N) + "x" + std::to_string(IC) + "->" +
                              std::to_string(OC),
                       ms, 2.0 * N * IC * OC / (ms * 1e-3) / 1e12, ""});
  };
  gemm_row("matmul_forward", C, 3 * C, [&] { gpu.matmul_forward(y, x, w, bias, N, C, 3 * C); });
  gemm_row("matmul_forward", 4 * C, C, [&] { gpu.matmul_forward(y, x, w, bias, N, 4 * C, C); });
  gemm_row("matmul_backward_input", C, 4 * C,
           [&] { gpu.matmul_backward_input(y, x, w, N, C, 4 * C); });
  gemm_row("matmul_backward_weight", C, 4 * C,
           [&] { gpu.matmul_backward_weight(w, bias, x, y, N, C, 4 * C); });
  {
    float* logits = static_cast<float*>(g.alloc(static_cast<size_t>(N) * V * sizeof(float)));
    float* wte = g.up(rng.normal(static_cast<size_t>(V) * C, 0.02f));
    gemm_row("lm_head forward", C, V, [&] { gpu.matmul_forward(logits, x, wte, nullptr, N, C, V); });
    int* tg = g.up(rng.ints(N, 0, V - 1));
    float* loss = static_cast<float*>(g.alloc(N * sizeof(float)));
    const double ms =
        time_ms(gpu, 2, 10, [&] { gpu.softmax_xent_forward(loss, logits, logits, tg, N, V); });
    push_time({P, "softmax_xent_forward N=" + std::to_string(N), ms,
                       0.0, std::to_string(2.0 * N * V * 4 / (ms * 1e-3) / 1e9) + " GB/s (2 passes)"});
  }
  {
    float* att = static_cast<float*>(g.alloc(gpu.attention_state_elems(B, T, C, NH) * 4));
    const double ms_f = time_ms(gpu, 2, 10, [&] { gpu.attention_forward(y, att, x, B, T, C, NH); });
    const double fl = 4.0 * B * NH * static_cast<double>(T) * T * (C / NH);  // 2 GEMMs, full T×T
    push_time({P, "attention_forward B" + std::to_string(B) + " T1024", ms_f,
                       fl / (ms_f * 1e-3) / 1e12, "full TxT GEMMs counted"});
    const double ms_b =
        time_ms(gpu, 2, 10, [&] { gpu.attention_backward(y, x, x, att, B, T, C, NH); });
    push_time({P, "attention_backward B" + std::to_string(B) + " T1024", ms_b,
                       2 * fl / (ms_b * 1e-3) / 1e12, "full TxT GEMMs counted"});
  }
  {
    const double ms = time_ms(gpu, 3, 20, [&] { gpu.gelu_forward(y, x, NC * 4); });
    push_time({P, "gelu_forward n=" + std::to_string(NC * 4), ms, 0.0,
                       std::to_string(NC * 4 * 8 / (ms * 1e-3) / 1e9) + " GB/s"});
    float* mean = static_cast<float*>(g.alloc(N * 4));
    float* rstd = static_cast<float*>(g.alloc(N * 4));
    const double ms2 =
        time_ms(gpu, 3, 20, [&] { gpu.layernorm_forward(y, mean, rstd, x, w, bias, N, C); });
    push_time({P, "layernorm_forward N=" + std::to_string(N), ms2, 0.0,
                       std::to_string(NC * 8 / (ms2 * 1e-3) / 1e9) + " GB/s"});
  }
}

// gpt2-124m, one stage, one micro-batch of B×1024 tokens: forward + backward + AdamW.
void bench_step(CudaBackend& gpu, CudaPrecision prec, int B, uint64_t seed, double peak_tflops) {
  const std::string P = paci::precision_name(prec);
  auto cfg = paci::preset("gpt2-124m");
  const int T = cfg.seq_len;
  auto part = paci::balanced_partition(cfg, 1)[0];
  gpu.reset_peak();
  paci::StageModel m(gpu, cfg, part, B, T, 1, seed);
  Rng rng(seed);
  auto tokens = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  auto targets = rng.ints(static_cast<size_t>(B) * T, 0, cfg.vocab_size - 1);
  float* mom = static_cast<float*>(gpu.alloc(m.param_bytes()));
  float* var = static_cast<float*>(gpu.alloc(m.param_bytes()));
  int step = 0;
  float loss = 0.f;
  auto one = [&] {
    loss = m.forward(0, m.params(), tokens.data(), nullptr, targets.data(), nullptr);
    m.backward(0, m.params(), nullptr, nullptr, 1.0f);
    ++step;
    gpu.adamw_update(m.params(), m.grads(), mom, var, m.param_count(), 3e-4, 0.9, 0.95,
                     std::pow(0.9, step), std::pow(0.95, step), 1e-8, 0.1);
    m.zero_grad();
  };
  const double ms = time_ms(gpu, 2, 2, one);  // 2 warm-up steps, 5×2 timed
  const double tokens_per_step = static_cast<double>(B) * T;
  const double flops = paci::flops_per_token(cfg, T) * tokens_per_step;
  const double achieved = flops / (ms * 1e-3) / 1e12;
  char note[200];
  std::snprintf(note, sizeof note, "%.0f tok/s, MFU %.1f%% of %.0f TFLOP/s; peak mem %.2f GiB; loss %.3f",
                tokens_per_step / (ms * 1e-3), 100.0 * achieved / peak_tflops, peak_tflops,
                gpu.memory().peak_bytes / 1073741824.0, loss);
  push_time({P, "gpt2-124m step B" + std::to_string(B) + " T1024 (1 stage)", ms, achieved,
                     note});
  gpu.free(mom);
  gpu.free(var);
}

// Prints the timing table and the checks table (last); returns the number of failed checks.
int print_tables() {
  int fails = 0;
  if (!g_times.empty()) {
    std::printf("\n%-5s %-52s %10s %9s  %s\n", "prec", "timing (median)", "ms", "TFLOP/s", "note");
    for (const auto& t : g_times) {
      std::printf("%-5s %-52s %10.3f %9.1f  %s\n", t.prec.c_str(), t.what.c_str(), t.ms, t.tflops,
                  t.note.c_str());
    }
  }
  std::printf("\n%-18s %-52s %10s %9s %4s %-4s  %s\n", "precision/shape", "check", "rel.err",
              "thresh", "nan", "ok", "note");
  for (const auto& r : g_rows) {
    if (!r.pass) ++fails;
    std::printf("%-18s %-52s %10.2e %9.1e %4zu %-4s  %s\n", r.prec.c_str(), r.op.c_str(), r.err,
                r.thresh, r.nonfinite, r.pass ? "ok" : "FAIL", r.note.c_str());
  }
  std::printf("\n%zu checks, %d failed\n", g_rows.size(), fails);
  return fails;
}

void usage() {
  std::printf(
      "usage: cuda_selftest [--precision all|fp32|tf32|bf16] [--shape all|odd|gpt2ish]\n"
      "                     [--no-model] [--no-green] [--no-bench] [--bench-batch B] [--seed S]\n"
      "                     [--nondeterministic]\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line-buffered even into a file (gpu_check.sh)
  std::vector<CudaPrecision> precs = {CudaPrecision::kFp32, CudaPrecision::kTf32,
                                      CudaPrecision::kBf16};
  bool do_bench = true, deterministic = true, do_model = true, do_green = true;
  std::string shape_filter = "all";
  int bench_B = 8;
  uint64_t seed = 1234;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--precision") {
      const std::string v = next();
      if (v != "all") precs = {paci::parse_precision(v)};
    } else if (a == "--no-bench") {
      do_bench = false;
    } else if (a == "--no-model") {
      do_model = false;
    } else if (a == "--no-green") {
      do_green = false;
    } else if (a == "--shape") {
      shape_filter = next();
    } else if (a == "--bench-batch") {
      bench_B = std::stoi(next());
    } else if (a == "--seed") {
      seed = std::stoull(next());
    } else if (a == "--nondeterministic") {
      deterministic = false;
    } else {
      usage();
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (CudaBackend::device_count() == 0) {
    std::printf("no CUDA device\n");
    return 3;
  }
  try {
    const auto info = CudaBackend::device_info(0);
    std::printf("device 0: %s, sm_%d%d, %d SMs, %.1f GiB, runtime %d, driver %d\n",
                info.name.c_str(), info.cc_major, info.cc_minor, info.sm_count,
                info.total_memory / 1073741824.0, info.runtime_version, info.driver_version);
    CpuBackend cpu;
    const Shape shapes[] = {
        {"odd", 3, 37, 100, 4, 1001},         // nothing a multiple of 32; hs = 25
        {"gpt2ish", 2, 256, 768, 12, 50257},  // N = 512, the real widths and vocabulary
    };
    for (CudaPrecision p : precs) {
      CudaBackendOptions o;
      o.precision = p;
      o.deterministic = deterministic;
      CudaBackend gpu(o);
      for (const Shape& s : shapes) {
        if (shape_filter != "all" && shape_filter != s.name) continue;
        std::fprintf(stderr, "[%s] ops on shape %s\n", paci::precision_name(p), s.name.c_str());
        guarded(std::string(paci::precision_name(p)) + " " + s.name, "ops",
                [&] { test_ops(gpu, cpu, p, s, seed); });
      }
      if (do_model) {
        std::fprintf(stderr, "[%s] model parity\n", paci::precision_name(p));
        guarded(paci::precision_name(p), "model parity", [&] { test_model(gpu, cpu, p, seed); });
      }
      const auto mem = gpu.memory();
      std::printf("[%s] memory after tests: current %.1f MiB (user %.1f, cached %.1f, scratch %.1f), peak %.1f MiB\n",
                  paci::precision_name(p), mem.current_bytes / 1048576.0,
                  mem.user_bytes / 1048576.0, mem.cached_bytes / 1048576.0, mem.scratch_bytes / 1048576.0,
                  mem.peak_bytes / 1048576.0);
    }
    if (do_model) {
      std::fprintf(stderr, "2-stage split check\n");
      guarded("fp32 det", "2-stage split", [&] { test_split(seed); });
    }
    std::fprintf(stderr, "plumbing\n");
    guarded("plumbing", "plumbing", [] { test_plumbing(); });
    if (do_green) {
      std::fprintf(stderr, "green contexts\n");
      guarded("green ctx", "green contexts", [&] { test_green(seed); });
    }
    if (do_bench) {
      for (CudaPrecision p : precs) {
        CudaBackendOptions o;
        o.precision = p;
        o.deterministic = deterministic;
        CudaBackend gpu(o);
        std::fprintf(stderr, "[%s] bench\n", paci::precision_name(p));
        guarded(paci::precision_name(p), "bench", [&] { bench(gpu, p, bench_B, seed); });
        // Dense peaks of an H100/H200 SXM: fp32 67, tf32 495, bf16 989 TFLOP/s.
        const double peak =
            p == CudaPrecision::kFp32 ? 67.0 : p == CudaPrecision::kTf32 ? 494.7 : 989.4;
        guarded(paci::precision_name(p), "gpt2-124m step",
                [&] { bench_step(gpu, p, bench_B, seed, peak); });
      }
    }
  } catch (const std::exception& e) {
    std::printf("ERROR: %s\n", e.what());
    print_tables();
    return 2;
  }

  return print_tables() ? 1 : 0;
}
