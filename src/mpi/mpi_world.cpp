#include "recis_convert/mpi/mpi_world.h"

#include <mpi.h>

#include <cstdint>
#include <cstdlib>

namespace recis_convert {
namespace {
constexpr int kFailureNoticeTag = 7001;
constexpr int kProgressTag = 7002;
constexpr int kScatterTag = 7003;
constexpr uint64_t kPiece = 1u << 30;  // MPI counts are int: big messages travel in pieces
}

struct MpiWorld::Notices {
  std::vector<MPI_Request> sends;
  int payload = 1;
  MPI_Request progress = MPI_REQUEST_NULL;
  uint64_t progress_payload[3] = {0, 0, 0};
};

MpiWorld::MpiWorld(int* argc, char*** argv) : notices_(std::make_unique<Notices>()) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiWorld::~MpiWorld() { MPI_Finalize(); }

std::string MpiWorld::broadcast_from_root(const std::string& text) {
  uint64_t size = is_root() ? text.size() : 0;
  MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  std::string out = is_root() ? text : std::string(size, '\0');
  // In pieces, so that messages above 2 GiB would still work.
  for (uint64_t done = 0; done < size; done += kPiece) {
    int count = static_cast<int>(size - done < kPiece ? size - done : kPiece);
    MPI_Bcast(out.data() + done, count, MPI_CHAR, 0, MPI_COMM_WORLD);
  }
  return out;
}

std::string MpiWorld::scatter_from_root(const std::function<std::string(int rank)>& message_for) {
  if (is_root()) {
    for (int peer = 1; peer < size_; ++peer) {
      const std::string text = message_for(peer);
      uint64_t size = text.size();
      MPI_Send(&size, 1, MPI_UINT64_T, peer, kScatterTag, MPI_COMM_WORLD);
      for (uint64_t done = 0; done < size; done += kPiece) {
        const int count = static_cast<int>(size - done < kPiece ? size - done : kPiece);
        MPI_Send(text.data() + done, count, MPI_CHAR, peer, kScatterTag, MPI_COMM_WORLD);
      }
    }
    return message_for(0);
  }
  uint64_t size = 0;
  MPI_Recv(&size, 1, MPI_UINT64_T, 0, kScatterTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  std::string text(size, '\0');
  for (uint64_t done = 0; done < size; done += kPiece) {
    const int count = static_cast<int>(size - done < kPiece ? size - done : kPiece);
    MPI_Recv(text.data() + done, count, MPI_CHAR, 0, kScatterTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  return text;
}

void MpiWorld::announce_failure() {
  if (announced_) return;
  announced_ = true;
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    notices_->sends.emplace_back();
    MPI_Isend(&notices_->payload, 1, MPI_INT, peer, kFailureNoticeTag, MPI_COMM_WORLD, &notices_->sends.back());
  }
}

bool MpiWorld::peer_failed() {
  if (!peer_failed_) {
    int arrived = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, kFailureNoticeTag, MPI_COMM_WORLD, &arrived, MPI_STATUS_IGNORE);
    peer_failed_ = arrived != 0;
  }
  return peer_failed_;
}

void MpiWorld::post_progress(const ProgressCount& count) {
  if (is_root()) return;
  if (count.final) {
    MPI_Wait(&notices_->progress, MPI_STATUS_IGNORE);  // a few bytes: sent eagerly, so this does not block
  } else if (notices_->progress != MPI_REQUEST_NULL) {
    int done = 0;
    MPI_Test(&notices_->progress, &done, MPI_STATUS_IGNORE);
    if (!done) return;  // still travelling: skip this count, a newer one follows
  }
  notices_->progress_payload[0] = count.bytes;
  notices_->progress_payload[1] = count.files;
  notices_->progress_payload[2] = count.final;
  MPI_Isend(notices_->progress_payload, 3, MPI_UINT64_T, 0, kProgressTag, MPI_COMM_WORLD, &notices_->progress);
  if (count.final) MPI_Wait(&notices_->progress, MPI_STATUS_IGNORE);
}

void MpiWorld::receive_progress(std::vector<ProgressCount>& latest) {
  if (!is_root()) return;
  latest.resize(static_cast<size_t>(size_));
  for (;;) {
    int arrived = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kProgressTag, MPI_COMM_WORLD, &arrived, &status);
    if (!arrived) return;
    uint64_t payload[3];
    MPI_Recv(payload, 3, MPI_UINT64_T, status.MPI_SOURCE, kProgressTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    latest[static_cast<size_t>(status.MPI_SOURCE)] = ProgressCount{payload[0], payload[1], payload[2]};
  }
}

Comm::Agreement MpiWorld::agree_on_status(int local_status) {
  Agreement agreement;
  MPI_Allreduce(&local_status, &agreement.status, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  // Every rank that announced a failure sent one notice to each other rank: receive exactly those.
  int announced = announced_ ? 1 : 0;
  int announcers = 0;
  MPI_Allreduce(&announced, &announcers, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  for (int i = 0; i < announcers - announced; ++i) {
    int payload = 0;
    MPI_Recv(&payload, 1, MPI_INT, MPI_ANY_SOURCE, kFailureNoticeTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  MPI_Waitall(static_cast<int>(notices_->sends.size()), notices_->sends.data(), MPI_STATUSES_IGNORE);
  notices_->sends.clear();
  agreement.failed_ranks = announcers;
  return agreement;
}

std::vector<std::string> MpiWorld::gather_to_root(const std::string& text) {
  int mine = static_cast<int>(text.size());
  std::vector<int> sizes(is_root() ? static_cast<size_t>(size_) : 0);
  MPI_Gather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int> displs(sizes.size(), 0);
  std::string all;
  if (is_root()) {
    int64_t total = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      displs[i] = static_cast<int>(total);
      total += sizes[i];
    }
    all.resize(static_cast<size_t>(total));
  }
  MPI_Gatherv(text.data(), mine, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR, 0, MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back(all.substr(static_cast<size_t>(displs[i]), sizes[i]));
  return out;
}

void MpiWorld::abort(int exit_code) const {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

std::vector<std::string> MpiWorld::allgather(const std::string& text) {
  int mine = static_cast<int>(text.size());
  std::vector<int> sizes(static_cast<size_t>(size_));
  MPI_Allgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<int> displs(sizes.size(), 0);
  int64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    displs[i] = static_cast<int>(total);
    total += sizes[i];
  }
  std::string all(static_cast<size_t>(total), '\0');
  MPI_Allgatherv(text.data(), mine, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back(all.substr(static_cast<size_t>(displs[i]), sizes[i]));
  return out;
}

std::string MpiWorld::host() const {
  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  return std::string(name, static_cast<size_t>(length));
}

}  // namespace recis_convert
