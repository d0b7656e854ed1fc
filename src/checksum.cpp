#include "recis_convert/checksum.h"

#include <xxhash.h>

#include <cstdio>
#include <new>

namespace recis_convert {

Checksum::Checksum() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(state_);
}

Checksum::~Checksum() { XXH3_freeState(state_); }

void Checksum::update(const void* data, size_t size) { XXH3_64bits_update(state_, data, size); }

uint64_t Checksum::digest() const { return XXH3_64bits_digest(state_); }

uint64_t Checksum::of(const void* data, size_t size) { return XXH3_64bits(data, size); }

std::string Checksum::hex(uint64_t digest) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(digest));
  return text;
}

}  // namespace recis_convert
