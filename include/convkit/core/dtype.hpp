// Element types a Tensor can hold, and their sizes and names.
#pragma once

#include <cstdint>
#include <string_view>

namespace convkit {

/// Element type. Arithmetic (convolutions, fills, allclose) is defined for F32 and F64;
/// I64 and U8 exist so that safetensors files with indices and masks round-trip.
enum class DType : std::uint8_t { F32, F64, I64, U8 };

constexpr std::int64_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

/// The safetensors spelling: "F32", "F64", "I64", "U8".
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t == DType::F32 || t == DType::F64; }

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::U8; };
template <typename T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace convkit
