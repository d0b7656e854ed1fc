#include "recis_convert/sinks/shared_file_checksums.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <numeric>
#include <optional>

#include "recis_convert/mpi/messages.h"
#include "recis_convert/plan/piece_plan.h"

namespace recis_convert {
namespace {

struct SharedFile {
  std::string name;
  uint64_t bytes = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SharedFile, name, bytes)

// What one rank read: the checksums of its share of the pieces, in order, or why it could not.
struct PieceChecksums {
  std::optional<Error> error;
  std::vector<uint64_t> pieces;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PieceChecksums, error, pieces)

Result<std::vector<SharedFile>> stat_files(const std::vector<std::string>& names, const std::string& dir) {
  std::vector<SharedFile> files;
  for (const auto& name : names) {
    struct stat st {};
    if (::stat((dir + "/" + name).c_str(), &st) != 0) {
      return output_error(dir + "/" + name, std::string("cannot stat: ") + std::strerror(errno));
    }
    files.push_back(SharedFile{name, static_cast<uint64_t>(st.st_size)});
  }
  return files;
}

}  // namespace

std::vector<std::string> shared_output_files(const StreamRequest& r) {
  const JobOptions& o = r.options;
  if (o.dry_run) return {};
  if (o.format == ExportFormat::kHdf5) return {"model.h5"};
  std::vector<std::string> names;
  if (r.reshard && r.reshard->layout) {
    for (const ReshardFile& f : r.reshard->layout->files) names.push_back(f.name);
  } else if (r.source.is_hugectr()) {
    for (const auto& t : r.source.hugectr->tables) names.push_back(t.file);
  }
  return names;
}

Result<SharedFileDigests> checksum_shared_files(Comm& comm, const std::vector<std::string>& names_on_root,
                                                const std::string& dir, uint64_t piece_bytes) {
  auto files = broadcast_result<std::vector<SharedFile>>(comm, [&] { return stat_files(names_on_root, dir); },
                                                         "shared-files");
  if (!files) return files.error();  // every rank has it
  std::vector<uint64_t> counts;
  for (const SharedFile& f : files.value()) counts.push_back(PieceChecksum::count(f.bytes, piece_bytes));
  PieceChecksums mine;
  for (const PieceSpan& span : share_of_pieces(counts, comm.size(), comm.rank())) {
    const SharedFile& f = files.value()[span.file];
    auto read = checksum_file_pieces(dir + "/" + f.name, piece_bytes, span.first, span.count, ExitCode::kOutput);
    if (read && read.value().size() != span.count) {
      read = output_error(dir + "/" + f.name, "ended before piece " + std::to_string(span.first + read.value().size()) +
                                                  ": it shrank while being checksummed");
    }
    if (!read) {
      mine.error = read.error();
      break;
    }
    mine.pieces.insert(mine.pieces.end(), read.value().begin(), read.value().end());
  }
  auto gathered = gather_to_root(comm, std::move(mine), "shared-file-checksums");
  if (!comm.is_root()) return SharedFileDigests{};
  if (!gathered) return gathered.error();
  std::vector<uint64_t> all;  // every rank's share in rank order: every piece in file order
  for (const PieceChecksums& rank : gathered.value()) {
    if (rank.error) return *rank.error;
    all.insert(all.end(), rank.pieces.begin(), rank.pieces.end());
  }
  if (all.size() != std::accumulate(counts.begin(), counts.end(), uint64_t{0})) {
    return Error{ExitCode::kInternal, dir, "the ranks' shares of the shared files' pieces do not add up"};
  }
  SharedFileDigests out;
  size_t at = 0;
  for (size_t i = 0; i < files.value().size(); ++i) {
    const std::vector<uint64_t> pieces(all.begin() + static_cast<ptrdiff_t>(at),
                                       all.begin() + static_cast<ptrdiff_t>(at + counts[i]));
    at += counts[i];
    out[files.value()[i].name] = FileDigest{files.value()[i].bytes, PieceChecksum::combine(pieces)};
  }
  return out;
}

}  // namespace recis_convert
