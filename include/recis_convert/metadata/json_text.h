// JSON written as text, byte for byte as nlohmann's dump() writes it (UTF-8 kept, control characters escaped as
// \b \t \n \f \r or \u00xx, '"' and '\' escaped), for the big metadata files: a million entries written straight
// into a string rather than through a tree of a million nodes.
#pragma once

#include <string>
#include <string_view>

namespace recis_convert {

// Appends `text` as a JSON string, quotes included. `text` is valid UTF-8 (it came from a checked document).
void append_json_string(std::string& out, std::string_view text);

// Where a big JSON text goes as it is written: a writer appends to text() and calls entry_done() after each
// entry. TextOut keeps everything (tests, verify); MetadataFileOut (export_files.h) writes each MiB to its file,
// so that a 100 MB file never sits in memory whole.
class TextOut {
 public:
  virtual ~TextOut() = default;
  std::string& text() { return text_; }
  void entry_done() {
    if (text_.size() >= kFlushBytes) flush();
  }

 protected:
  static constexpr size_t kFlushBytes = 1u << 20;
  virtual void flush() {}  // hands text() on and clears it
  std::string text_;
};

}  // namespace recis_convert
