#include "recis_convert/publish/resume_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "recis_convert/common/checksum.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/publish/staging.h"

namespace recis_convert {
namespace {

// The job config keys that do not change the export's bytes: how the work is run, reported and made durable.
const char* const kVolatileOptions[] = {"resume",     "report",      "progress-interval", "quiet",
                                        "verbose",    "buffer-mib",  "copy-method",       "balance",
                                        "no-fsync",   "overwrite",   "stall-timeout"};

std::string errno_text() { return std::strerror(errno); }
std::string journal(const std::string& staging) { return staging + "/" + kJournalDir; }
std::string entries(const std::string& staging) { return journal(staging) + "/files"; }
std::string piece_entry(const std::string& file, uint32_t piece, uint32_t pieces) {
  return file + ".piece-" + std::to_string(piece) + "-of-" + std::to_string(pieces);
}
// run.json and each entry (whose tensor lists grow with the file's tensors) stay far below this
constexpr uint64_t kMaxJournalFileBytes = 1ull << 30;

constexpr const char* kRowRangePrefix = "row-table-";
std::string row_range_entry(const RowRangeResult& range) {
  return kRowRangePrefix + std::to_string(range.table) + ".range-" + std::to_string(range.range) + "-of-" +
         std::to_string(range.ranges);
}

// The output files an entry is about: its own name, a piece's file (which stays for the pieces journaled), or the
// files a row table's range was written into (read from the entry; none if it is unreadable).
std::vector<std::string> outputs_of_entry(const std::string& dir, const std::string& entry) {
  if (entry.rfind(kRowRangePrefix, 0) != 0) {
    const size_t at = entry.rfind(".piece-");
    return {at == std::string::npos ? entry : entry.substr(0, at)};
  }
  std::vector<std::string> files;
  auto text = read_small_file(dir + "/" + entry, kMaxJournalFileBytes);
  if (!text) return files;
  auto decoded = messages_detail::decode<JournalEntry>(std::move(text).value(), "journal entry");
  if (!decoded || !decoded.value().rows) return files;
  for (const OutputRegion& region : decoded.value().rows->regions) files.push_back(region.file);
  return files;
}

// Whether the source of a journaled output is as it was when journaled.
bool source_unchanged(const std::string& source, const JournalEntry& entry);

// XXH3-64 of a safetensors file's length prefix and header (at most its first 8 + N bytes, a MiB at a time).
Result<uint64_t> header_checksum(const std::string& path) {
  auto opened = open_input_file(path);
  if (!opened) return opened.error();
  FileDescriptor fd = std::move(opened).value();
  unsigned char prefix[8];
  auto read = read_exact(fd.get(), 0, sizeof prefix, prefix, path, "the header length");
  if (!read) return read.error();
  uint64_t length = 0;
  std::memcpy(&length, prefix, sizeof length);
  Checksum checksum;
  checksum.update(prefix, sizeof prefix);
  std::vector<unsigned char> chunk(1 << 20);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return bad_input(path, "cannot stat: " + errno_text());
  length = std::min<uint64_t>(length, static_cast<uint64_t>(st.st_size) - std::min<uint64_t>(8, st.st_size));
  for (uint64_t done = 0; done < length;) {
    const uint64_t n = std::min<uint64_t>(chunk.size(), length - done);
    read = read_exact(fd.get(), 8 + done, n, chunk.data(), path, "the header");
    if (!read) return read.error();
    checksum.update(chunk.data(), n);
    done += n;
  }
  return checksum.digest();
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Removes everything in `dir` but the entries `keep` names.
Status empty_directory(const std::string& dir, const std::vector<std::string>& keep) {
  for (const std::string& name : names_in(dir)) {
    if (std::find(keep.begin(), keep.end(), name) != keep.end()) continue;
    if (!remove_tree(dir + "/" + name)) return output_error(dir + "/" + name, "cannot remove it from the staging directory");
  }
  return Ok{};
}

}  // namespace

namespace {

nlohmann::json file_entry(const std::string& name, uint64_t size, int64_t mtime_ns) {
  return {{"name", name}, {"size", size}, {"mtime_ns", mtime_ns}};
}

// A checkpoint: its index and tensorkey.json by their checksums, and every data file's size and time.
Result<nlohmann::json> checkpoint_source(const CheckpointListing& listing) {
  nlohmann::json source;
  source["checkpoint"] = resolved_path(listing.ckpt_dir);
  for (const char* name : {"index", "tensorkey.json"}) {
    const std::string path = listing.ckpt_dir + "/" + name;
    auto digest = Checksum::of_file(path, ExitCode::kBadInput, 0);
    source[name] = digest ? Checksum::hex(digest.value().checksum) : "absent";
  }
  nlohmann::json files = nlohmann::json::array();
  for (const DataFile& file : listing.files) {  // as discovery stamped them
    files.push_back(file_entry(file.name, file.size, file.mtime_ns));
  }
  source["files"] = std::move(files);
  return source;
}

// Row tables: what describes them (a DCP's .metadata, HugeCTR's graph) by its checksum, and every file their rows
// are read from, as discovery stamped it (RowTables::inputs).
Result<nlohmann::json> row_tables_source(const SourceDescription& described) {
  const RowTables& tables = *described.row_tables;
  nlohmann::json source;
  source["checkpoint"] = resolved_path(tables.source_path);
  const std::string description =
      described.kind == SourceKind::kDcp ? tables.source_path + "/" + kDcpMetadataFile : tables.source_path;
  auto digest = Checksum::of_file(description, ExitCode::kBadInput, 0);
  if (!digest) return digest.error();
  source["description"] = Checksum::hex(digest.value().checksum);
  nlohmann::json files = nlohmann::json::array();
  for (const auto& [path, stamp] : tables.inputs) files.push_back(file_entry(path, stamp.size, stamp.mtime_ns));
  source["files"] = std::move(files);
  return source;
}

}  // namespace

Result<RunFingerprint> run_fingerprint(const nlohmann::json& job_config, const SourceDescription& described) {
  RunFingerprint f;
  f.options = job_config;
  for (const char* key : kVolatileOptions) f.options.erase(key);
  auto source = described.has_row_tables() ? row_tables_source(described) : checkpoint_source(described.listing);
  if (!source) return source.error();
  f.source = std::move(source).value();
  return f;
}

std::string why_not_resumable(const RunFingerprint& previous, const RunFingerprint& now) {
  for (const auto& [key, value] : now.options.items()) {
    if (!previous.options.contains(key) || previous.options[key] != value) return "option " + key + " differs";
  }
  for (const auto& [key, value] : previous.options.items()) {
    if (!now.options.contains(key)) return "option " + key + " differs";
  }
  if (previous.source.value("checkpoint", "") != now.source.value("checkpoint", "")) return "another checkpoint";
  for (const char* name : {"index", "tensorkey.json", "description"}) {
    if (previous.source.value(name, "") != now.source.value(name, "")) {
      return std::string(name) == "description" ? "the tables' description (a DCP's .metadata, HugeCTR's graph) changed"
                                                : std::string("the checkpoint's ") + name + " changed";
    }
  }
  const nlohmann::json was = previous.source.value("files", nlohmann::json());  // run.json may lack it: not read
  const nlohmann::json& is = now.source.at("files");                              // through a missing key
  if (!was.is_array() || was.size() != is.size()) return "the checkpoint's data files changed";
  for (size_t i = 0; i < is.size(); ++i) {
    if (was[i] != is[i]) return "data file " + is[i].value("name", "?") + " changed (size or modification time)";
  }
  return "";
}

Result<ResumeState> open_resume_journal(const std::string& staging_dir, const RunFingerprint& fingerprint, bool existed,
                                        const Log& log) {
  ResumeState state;
  const std::string dir = journal(staging_dir);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return output_error(dir, "cannot create: " + errno_text());
  const std::string lock_path = dir + "/lock";
  state.lock = std::make_unique<FileDescriptor>(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (state.lock->get() < 0) return output_error(lock_path, "cannot open: " + errno_text());
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(state.lock->get(), F_SETLK, &lock) != 0) {
    if (errno == EACCES || errno == EAGAIN) {
      return output_error(staging_dir, "another --resume run of this export is running (it holds " + lock_path + ")");
    }
    log.warn(lock_path + ": cannot lock (" + errno_text() + "); going on without the lock");
  }
  std::string why;
  if (existed) {
    auto text = read_small_file(dir + "/run.json", kMaxJournalFileBytes);
    auto previous = text ? nlohmann::json::parse(text.value(), nullptr, false) : nlohmann::json();
    if (!text || previous.is_discarded() || !previous.is_object()) {
      why = "its run.json is missing or unreadable";
    } else {
      why = why_not_resumable(RunFingerprint{previous.value("options", nlohmann::json::object()),
                                             previous.value("source", nlohmann::json::object())},
                              fingerprint);
    }
  }
  if (!existed || !why.empty()) {
    if (!why.empty()) log.stage("--resume: a fresh start in " + staging_dir + ": " + why);
    auto emptied = empty_directory(staging_dir, {kJournalDir});
    if (!emptied) return emptied.error();
    if (!remove_tree(entries(staging_dir))) return output_error(entries(staging_dir), "cannot remove the old entries");
    if (::mkdir(entries(staging_dir).c_str(), 0755) != 0) return output_error(entries(staging_dir), "cannot create: " + errno_text());
    nlohmann::json run = {{"options", fingerprint.options}, {"source", fingerprint.source}};
    auto written = write_file_atomically(dir + "/run.json", run.dump(2) + "\n");
    if (!written) return written.error();
    auto synced = fsync_directory(dir);
    if (!synced) return synced.error();
    return state;
  }
  // adopt: keep the journal and the files it lists; an output without an entry was cut off, metadata is redone
  std::vector<std::string> keep = {kJournalDir};
  for (const std::string& name : names_in(entries(staging_dir))) {
    if (name.find(".tmp.") != std::string::npos) continue;  // an entry cut off before its rename
    for (std::string& output : outputs_of_entry(entries(staging_dir), name)) keep.push_back(std::move(output));
    ++state.journaled;
  }
  auto emptied = empty_directory(staging_dir, keep);
  if (!emptied) return emptied.error();
  log.stage("--resume: " + staging_dir + " holds " + std::to_string(state.journaled) +
            " journaled outputs (files, pieces of files or ranges of table rows) of an interrupted run with the same "
            "options and source; each is checked before it is adopted");
  return state;
}

std::optional<JournalEntry> adopt_journaled_file(const std::string& staging_dir, const std::string& ckpt_dir,
                                                 const DataFile& file, uint64_t piece_bytes, const Log& log) {
  const std::string entry_path = entries(staging_dir) + "/" + file.name;
  const std::string output = staging_dir + "/" + file.name;
  auto text = read_small_file(entry_path, kMaxJournalFileBytes);
  if (!text) return std::nullopt;
  auto redo = [&](const std::string& why) -> std::optional<JournalEntry> {
    log.event("--resume: " + file.name + " is redone: " + why);
    ::unlink(entry_path.c_str());
    ::unlink(output.c_str());
    return std::nullopt;
  };
  auto decoded = messages_detail::decode<JournalEntry>(std::move(text).value(), "journal entry");
  if (!decoded || decoded.value().result.name != file.name) return redo("its journal entry is unreadable");
  std::optional<JournalEntry> entry = std::move(decoded).value();
  if (entry->piece) return redo("its journal entry is a piece's");
  if (!source_unchanged(ckpt_dir + "/" + file.name, *entry)) return redo("its source changed since it was exported");
  if (!entry->result.written) return entry;  // every tensor dropped: no output file
  auto digest = Checksum::of_file(output, ExitCode::kOutput, piece_bytes);
  if (!digest || digest.value().bytes != entry->result.output_bytes || digest.value().checksum != entry->result.checksum) {
    return redo("the staged file's size or checksum is not the journaled one");
  }
  return entry;
}

namespace {

bool source_unchanged(const std::string& source, const JournalEntry& entry) {
  auto stamp = regular_file_stamp(source);
  auto header = header_checksum(source);
  return stamp && stamp->size == entry.source_size && stamp->mtime_ns == entry.source_mtime_ns && header &&
         header.value() == entry.source_header;
}

// An entry of an output of `source` (its size, time and header read now), written atomically.
Status write_entry(const std::string& path, const std::string& source, JournalEntry entry) {
  auto stamp = regular_file_stamp(source);
  if (!stamp) return bad_input(source, "cannot stat it, or it is no longer a regular file");
  auto header = header_checksum(source);
  if (!header) return header.error();
  entry.source_size = stamp->size;
  entry.source_mtime_ns = stamp->mtime_ns;
  entry.source_header = header.value();
  return write_file_atomically(path, messages_detail::encode(entry));
}

}  // namespace

Status journal_file(const std::string& staging_dir, const std::string& ckpt_dir, const FileResult& result,
                    double seconds) {
  JournalEntry entry;
  entry.result = result;
  entry.seconds = seconds;
  return write_entry(entries(staging_dir) + "/" + result.name, ckpt_dir + "/" + result.name, std::move(entry));
}

Status journal_piece(const std::string& staging_dir, const std::string& ckpt_dir, const PieceOutcome& done,
                     double seconds) {
  JournalEntry entry;
  if (done.file) entry.result = *done.file;
  entry.result.name = done.piece.file;
  entry.piece = done.piece;
  entry.seconds = seconds;
  return write_entry(entries(staging_dir) + "/" + piece_entry(done.piece.file, done.piece.piece, done.piece.pieces),
                     ckpt_dir + "/" + done.piece.file, std::move(entry));
}

std::optional<JournalEntry> adopt_journaled_piece(const std::string& staging_dir, const std::string& ckpt_dir,
                                                  const DataFile& file, uint32_t piece, uint32_t pieces,
                                                  uint64_t piece_bytes, const Log& log) {
  const std::string entry_path = entries(staging_dir) + "/" + piece_entry(file.name, piece, pieces);
  auto text = read_small_file(entry_path, kMaxJournalFileBytes);
  if (!text) return std::nullopt;
  auto redo = [&](const std::string& why) -> std::optional<JournalEntry> {
    log.event("--resume: piece " + std::to_string(piece + 1) + " of " + std::to_string(pieces) + " of " + file.name +
              " is redone: " + why);
    ::unlink(entry_path.c_str());
    return std::nullopt;
  };
  auto decoded = messages_detail::decode<JournalEntry>(std::move(text).value(), "journal entry");
  if (!decoded || !decoded.value().piece || decoded.value().piece->file != file.name ||
      decoded.value().piece->piece != piece) {
    return redo("its journal entry is unreadable");
  }
  std::optional<JournalEntry> entry = std::move(decoded).value();
  if (!source_unchanged(ckpt_dir + "/" + file.name, *entry)) return redo("its source changed since it was exported");
  const PieceResult& p = *entry->piece;
  if (p.checksums.empty()) return entry;  // nothing of the output was this piece's
  auto read = checksum_file_pieces(staging_dir + "/" + file.name, piece_bytes, p.first_checksum_piece,
                                   p.checksums.size(), ExitCode::kOutput);
  if (!read || read.value() != p.checksums) return redo("the staged bytes are not the journaled ones");
  return entry;
}

std::optional<JournalEntry> adopt_journaled_rows(const std::string& staging_dir, const RowRangeResult& planned,
                                                 const Log& log) {
  const std::string entry_path = entries(staging_dir) + "/" + row_range_entry(planned);
  auto text = read_small_file(entry_path, kMaxJournalFileBytes);
  if (!text) return std::nullopt;
  auto redo = [&](const std::string& why) -> std::optional<JournalEntry> {
    log.event("--resume: rows " + std::to_string(planned.range + 1) + " of " + std::to_string(planned.ranges) +
              " of table " + std::to_string(planned.table) + " are redone: " + why);
    ::unlink(entry_path.c_str());
    return std::nullopt;
  };
  auto decoded = messages_detail::decode<JournalEntry>(std::move(text).value(), "journal entry");
  if (!decoded || !decoded.value().rows) return redo("its journal entry is unreadable");
  JournalEntry entry = std::move(decoded).value();
  const RowRangeResult was = std::move(entry.rows).value_or(RowRangeResult{});
  bool same = was.table == planned.table && was.range == planned.range && was.ranges == planned.ranges &&
              was.regions.size() == planned.regions.size();
  for (size_t k = 0; same && k < was.regions.size(); ++k) {
    const OutputRegion& a = was.regions[k];
    const OutputRegion& b = planned.regions[k];
    same = a.file == b.file && a.offset == b.offset && a.bytes == b.bytes;
  }
  if (!same) return redo("its journaled regions are not the planned ones");
  for (const OutputRegion& region : was.regions) {
    auto checksum = checksum_file_range(staging_dir + "/" + region.file, region.offset, region.bytes, ExitCode::kOutput);
    if (!checksum || checksum.value() != region.checksum) return redo("the staged bytes are not the journaled ones");
  }
  entry.rows = was;
  return entry;
}

Status journal_rows(const std::string& staging_dir, const RowRangeResult& written, double seconds, bool fsync) {
  if (fsync) {  // each file its regions lie in, once
    std::vector<std::string> files;
    for (const OutputRegion& region : written.regions) {
      if (std::find(files.begin(), files.end(), region.file) == files.end()) files.push_back(region.file);
    }
    for (const std::string& file : files) {
      auto synced = fsync_file(staging_dir + "/" + file);
      if (!synced) return synced;
    }
  }
  JournalEntry entry;
  entry.rows = written;
  entry.seconds = seconds;
  return write_file_atomically(entries(staging_dir) + "/" + row_range_entry(written), messages_detail::encode(entry));
}

}  // namespace recis_convert
