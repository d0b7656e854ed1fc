#include "recis_convert/metadata/export_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/sinks/copy_engine.h"

namespace recis_convert {
namespace {
constexpr uint64_t kMaxConfigBytes = 64u << 20;  // fg.json / mc configs
}

Result<ExtraFile> describe_written_file(const std::string& path, const std::string& name, uint64_t piece_bytes) {
  auto digest = Checksum::of_file(path, ExitCode::kOutput, piece_bytes);
  if (!digest) return digest.error();
  return ExtraFile{name, digest.value().bytes, digest.value().checksum, piece_bytes != 0};
}

Result<ExtraFile> copy_asset(const std::string& source, const std::string& dir, bool fsync) {
  return copy_file_into(source, dir, source.substr(source.find_last_of('/') + 1), fsync);
}

Result<ExtraFile> copy_file_into(const std::string& source, const std::string& dir, const std::string& name,
                                 bool fsync) {
  const std::string target = dir + "/" + name;
  auto opened = open_input_file(source);
  if (!opened) return opened.error();
  FileDescriptor in = std::move(opened).value();
  auto before = stamp_of(in.get(), source);
  if (!before) return before.error();
  for (size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1)) {
    const std::string folder = dir + "/" + name.substr(0, slash);  // e.g. the dense export's folder
    if (::mkdir(folder.c_str(), 0777) != 0 && errno != EEXIST) {
      return output_error(folder, std::string("cannot create: ") + std::strerror(errno));
    }
  }
  FileDescriptor out(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (out.get() < 0) return output_error(target, std::string("cannot create: ") + std::strerror(errno));
  FileLayout plan;
  plan.ranges.push_back({0, before.value().size});
  CopyEngine engine(1 << 20, CopyPath::kKernelWindows, 0);  // small files: a whole-file checksum
  auto copied = engine.write(in.get(), source, out.get(), target, plan);
  if (!copied) return copied.error();
  auto after = stamp_of(in.get(), source);
  if (!after) return after.error();
  auto unchanged = check_unchanged(before.value(), after.value(), source);
  if (!unchanged) return unchanged.error();
  if ((fsync && ::fsync(out.get()) != 0) || ::close(out.release()) != 0) {
    return output_error(target, std::string("cannot finish writing: ") + std::strerror(errno));
  }
  return ExtraFile{name, copied.value().bytes_written, copied.value().checksum};
}

Result<ExtraFile> write_metadata_file(const std::string& dir, const std::string& name, const std::string& content,
                                      bool fsync) {
  const std::string path = dir + "/" + name;
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (fd.get() < 0) return output_error(path, std::string("cannot create: ") + std::strerror(errno));
  auto written = write_all(fd.get(), content.data(), content.size(), path);
  if (!written) return written.error();
  if ((fsync && ::fsync(fd.get()) != 0) || ::close(fd.release()) != 0) {
    return output_error(path, std::string("write failed: ") + std::strerror(errno));
  }
  return ExtraFile{name, content.size(), Checksum::of(content.data(), content.size())};
}

MetadataFileOut::MetadataFileOut(const std::string& dir, const std::string& name, bool fsync)
    : name_(name), path_(dir + "/" + name), fsync_(fsync) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd_ < 0) error_ = output_error(path_, std::string("cannot create: ") + std::strerror(errno));
}

MetadataFileOut::~MetadataFileOut() {
  if (fd_ >= 0) ::close(fd_);
}

void MetadataFileOut::flush() {
  if (!error_ && fd_ >= 0) {
    auto written = write_all(fd_, text_.data(), text_.size(), path_);
    if (!written) error_ = written.error();
    checksum_.update(text_.data(), text_.size());
    bytes_ += text_.size();
  }
  text_.clear();
}

Result<ExtraFile> MetadataFileOut::finish() {
  flush();
  if (error_) return *error_;
  const int fd = fd_;
  fd_ = -1;
  if ((fsync_ && ::fsync(fd) != 0) || ::close(fd) != 0) {
    return output_error(path_, std::string("write failed: ") + std::strerror(errno));
  }
  return ExtraFile{name_, bytes_, checksum_.digest()};
}

Result<std::string> read_json_config(const std::string& path, const char* what) {
  auto text = read_small_file(path, kMaxConfigBytes);
  if (!text) return text.error();
  auto parsed = parse_strict_json(text.value(), path, what);
  if (!parsed) return parsed.error();
  if (!parsed.value().value.is_object()) return bad_input(path, std::string(what) + " is not a JSON object");
  return text;
}

}  // namespace recis_convert
