// libFuzzer target: a whole safetensors file in memory through the header checks.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "recis_convert/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recis_convert;
  if (size < kLengthPrefixBytes) return 0;
  auto n = check_length_prefix(data, size, "fuzz");
  if (!n) return 0;
  auto header = parse_safetensors_header(
      std::string_view(reinterpret_cast<const char*>(data) + kLengthPrefixBytes, n.value()), size, "fuzz");
  if (header) {
    // A header that passed must describe the file exactly; rewriting it must not fail either.
    uint64_t covered = header.value().data_start();
    for (const auto& t : header.value().tensors) covered += t.nbytes();
    if (covered != size) __builtin_trap();
    (void)serialize_recis_header(header.value().tensors, header.value().metadata);
  }
  return 0;
}
