// Little-endian integers and length-prefixed text in a byte string: the binary encoding of the large values that
// travel between ranks (a block catalog, a file's tensor list), where a JSON tree would cost a node per field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace recis_convert {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { fixed(v, 4); }
  void u64(uint64_t v) { fixed(v, 8); }
  void text(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  void fixed(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string& out_;
};

// Every read returns false once the bytes run out; the caller then rejects the whole message.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  bool u8(uint8_t& v) { return fixed(v, 1); }
  bool u32(uint32_t& v) { return fixed(v, 4); }
  bool u64(uint64_t& v) { return fixed(v, 8); }
  bool raw(std::string& out, uint64_t size) {
    if (bytes_.size() - at_ < size) return false;
    out.assign(bytes_.data() + at_, size);
    at_ += size;
    return true;
  }
  bool text(std::string& out) {
    uint32_t size = 0;
    return u32(size) && raw(out, size);
  }
  size_t remaining() const { return bytes_.size() - at_; }
  bool at_end() const { return at_ == bytes_.size(); }

 private:
  template <typename T>
  bool fixed(T& v, size_t size) {
    if (bytes_.size() - at_ < size) return false;
    v = 0;
    for (size_t i = 0; i < size; ++i) v |= static_cast<T>(static_cast<unsigned char>(bytes_[at_ + i])) << (8 * i);
    at_ += size;
    return true;
  }
  std::string_view bytes_;
  size_t at_ = 0;
};

}  // namespace recis_convert
