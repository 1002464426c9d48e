// The instruction sets our kernels are written for, and how a plan or a test picks one.
//
//   HostInfo avx2_only = restrict_isa(host, Isa::avx2);   // force the AVX2 variant
//   if (host_has(host, Isa::avx512)) ...
#pragma once

#include "jit/host_info.hpp"

namespace nnjit::jit {

enum class Isa {
  avx2,    // AVX2 + FMA, 16 ymm registers, 8-channel blocks (nChw8c)
  avx512,  // AVX-512 F/BW/VL/DQ, 32 zmm registers, 16-channel blocks (nChw16c)
};

inline const char* to_string(Isa isa) { return isa == Isa::avx512 ? "avx512" : "avx2"; }
// Channels per block, and floats per vector register.
inline int isa_block(Isa isa) { return isa == Isa::avx512 ? 16 : 8; }
inline int isa_vector_registers(Isa isa) { return isa == Isa::avx512 ? 32 : 16; }

inline bool host_has(const HostInfo& host, Isa isa) {
  return isa == Isa::avx512 ? has_avx512(host) : has_avx2(host);
}

// The host with every ISA above `isa` switched off, so planners pick `isa` (tests, the
// NNJIT_ISA override). It does not switch on what the host lacks.
inline HostInfo restrict_isa(HostInfo host, Isa isa) {
  if (isa == Isa::avx2) {
    host.avx512f = host.avx512bw = host.avx512vl = host.avx512dq = false;
    host.avx512_vnni = host.avx512_bf16 = false;
    host.amx_tile = host.amx_int8 = host.amx_bf16 = false;
  }
  return host;
}

}  // namespace nnjit::jit
