#include "recis_convert/sinks/shared_file_checksums.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <optional>
#include <set>

#include "recis_convert/common/interrupt.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/mpi/messages.h"
#include "recis_convert/plan/piece_plan.h"

namespace recis_convert {
namespace {

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

bool PieceShare::interrupted() const {
  return std::any_of(errors.begin(), errors.end(), [](const Error& e) { return e.code == ExitCode::kInterrupted; });
}

PieceShare read_piece_share(const std::vector<PiecedFile>& files, int ranks, int rank) {
  std::vector<uint64_t> counts;
  for (const auto& f : files) counts.push_back(PieceChecksum::count(f.bytes, f.piece_bytes));
  PieceShare share;
  for (const PieceSpan& span : share_of_pieces(counts, ranks, rank)) {
    const PiecedFile& f = files[span.file];
    Result<std::vector<uint64_t>> read = std::vector<uint64_t>{};  // after a signal: nothing more is read
    if (!share.interrupted()) {
      auto stop = interruption();
      read = stop ? Result<std::vector<uint64_t>>(*stop)
                  : checksum_file_pieces(f.path, f.piece_bytes, span.first, span.count, ExitCode::kOutput);
    }
    if (read && read.value().size() == span.count) {
      share.pieces.insert(share.pieces.end(), read.value().begin(), read.value().end());
      continue;
    }
    share.pieces.insert(share.pieces.end(), span.count, 0);
    share.unreadable.push_back(span.file);
    if (!read) share.errors.push_back(read.error());  // else a short file: its size is the caller's to say
  }
  return share;
}

std::vector<std::optional<uint64_t>> join_piece_shares(const std::vector<PiecedFile>& files,
                                                       const std::vector<PieceShare>& shares) {
  std::set<uint64_t> unreadable;
  std::vector<uint64_t> all;  // every rank's share in rank order: every piece in file order
  for (const auto& share : shares) {
    unreadable.insert(share.unreadable.begin(), share.unreadable.end());
    all.insert(all.end(), share.pieces.begin(), share.pieces.end());
  }
  std::vector<std::optional<uint64_t>> out;
  size_t at = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const uint64_t count = PieceChecksum::count(files[i].bytes, files[i].piece_bytes);
    if (unreadable.count(i) || at + count > all.size()) {
      out.emplace_back();
    } else {
      out.emplace_back(PieceChecksum::combine(std::vector<uint64_t>(all.begin() + static_cast<ptrdiff_t>(at),
                                                                    all.begin() + static_cast<ptrdiff_t>(at + count))));
    }
    at += count;
  }
  return out;
}

Result<SharedFileDigests> checksum_shared_files(Comm& comm, const std::vector<std::string>& names_on_root,
                                                const std::string& dir, uint64_t piece_bytes) {
  auto listed = broadcast_result<std::vector<SharedFile>>(comm, [&] { return stat_files(names_on_root, dir); },
                                                          "shared-files");
  if (!listed) return listed.error();  // every rank has it
  std::vector<PiecedFile> files;
  for (const SharedFile& f : listed.value()) files.push_back(PiecedFile{dir + "/" + f.name, f.bytes, piece_bytes});
  auto gathered = gather_to_root(comm, read_piece_share(files, comm.size(), comm.rank()), "shared-file-checksums");
  if (!comm.is_root()) return SharedFileDigests{};
  if (!gathered) return gathered.error();
  for (const PieceShare& share : gathered.value()) {
    if (!share.errors.empty()) return share.errors.front();
  }
  const auto checksums = join_piece_shares(files, gathered.value());
  SharedFileDigests out;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!checksums[i]) return output_error(files[i].path, "it shrank while being checksummed");
    out[listed.value()[i].name] = FileDigest{files[i].bytes, *checksums[i]};
  }
  return out;
}

}  // namespace recis_convert
