#include "recis_convert/mpi/mpi_world.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "recis_convert/common/activity.h"
#include "recis_convert/mpi/stall_watch.h"

namespace recis_convert {
namespace {
constexpr int kFailureNoticeTag = 7001;
constexpr int kProgressTag = 7002;
constexpr int kScatterTag = 7003;
constexpr int kHeartbeatTag = 7004;  // on the watchdog's own communicator
constexpr uint64_t kPiece = 1u << 30;  // MPI counts are int: big messages travel in pieces

// Heartbeats: several per timeout, so that one late beat is no stall, and at most one every few seconds, so that
// they cost nothing next to the job (rank 0 sends one to each rank per interval: 1000 ranks, 200 small messages a
// second at the longest interval).
constexpr double kBeatsPerTimeout = 6;
constexpr double kMinBeatSeconds = 0.05;
constexpr double kMaxBeatSeconds = 5;
// While shutting down, the thread polls this often for the last heartbeats and the closing barrier.
constexpr std::chrono::milliseconds kClosingPoll{5};

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

// The heartbeat thread. Heartbeats are synchronous sends (MPI_Issend): one completes only once its receiver has
// taken it, so at most one per peer is ever in flight, a peer behind a partition costs one pending request, and
// at shutdown "every rank's last send completed, then the closing barrier completed" means no message is left
// anywhere (the non-blocking consensus of Hoefler et al., "Scalable communication protocols for dynamic sparse
// data exchange", 2010).
struct MpiWorld::Watchdog {
  MPI_Comm comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: heartbeats never meet the job's messages
  double timeout = 0;
  std::function<void(const std::string&)> on_stall;
  std::vector<std::string> hosts;  // by rank, for the stall line
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;  // set by stop_watching(), under `mutex`
  std::thread thread;

  void run(const MpiWorld& world);
};

void MpiWorld::Watchdog::run(const MpiWorld& world) {
  const int rank = world.rank(), size = world.size();
  const auto beat = std::chrono::duration<double>(std::clamp(timeout / kBeatsPerTimeout, kMinBeatSeconds,
                                                             kMaxBeatSeconds));
  std::vector<int> peers;  // rank 0 hears every rank; every other rank hears rank 0
  if (rank == 0) {
    for (int r = 1; r < size; ++r) peers.push_back(r);
  } else {
    peers.push_back(0);
  }
  std::vector<MPI_Request> sends(peers.size(), MPI_REQUEST_NULL);
  std::vector<Heartbeat> sent(peers.size());
  std::vector<bool> said_goodbye(peers.size(), false);
  MPI_Request barrier = MPI_REQUEST_NULL;
  bool in_barrier = false;
  double closing_since = 0;
  StallWatch watch(rank, size, timeout, monotonic_seconds());
  for (;;) {
    bool closing;
    {
      std::lock_guard<std::mutex> lock(mutex);
      closing = stopping;
    }
    const double now = monotonic_seconds();
    if (closing && closing_since == 0) closing_since = now;
    const Heartbeat mine{activity(), waiting_for_peers() ? 1u : 0u, closing ? 1u : 0u};
    bool all_said = true;
    for (size_t i = 0; i < peers.size(); ++i) {
      int done = 1;
      if (sends[i] != MPI_REQUEST_NULL) MPI_Test(&sends[i], &done, MPI_STATUS_IGNORE);
      if (!done || said_goodbye[i]) {
        all_said = all_said && said_goodbye[i] && done;
        continue;  // the previous beat is still on its way (a slow or cut peer): skip this one
      }
      sent[i] = mine;
      MPI_Issend(&sent[i], 3, MPI_UINT64_T, peers[i], kHeartbeatTag, comm, &sends[i]);
      said_goodbye[i] = closing;
      all_said = false;  // complete once received
    }
    for (;;) {
      int arrived = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kHeartbeatTag, comm, &arrived, &status);
      if (!arrived) break;
      Heartbeat heard;
      MPI_Recv(&heard, 3, MPI_UINT64_T, status.MPI_SOURCE, kHeartbeatTag, comm, MPI_STATUS_IGNORE);
      watch.heard(status.MPI_SOURCE, heard, now);
    }
    watch.self(mine, now);
    // Judged while the run goes on; once this rank is closing, the run's outcome is decided (and maybe published),
    // so a peer that does not close only delays the exit, by a timeout at most (below).
    if (!closing) {
      if (auto stall = watch.judge(now)) on_stall(describe_stall(*stall, timeout, hosts));  // ends the process
    }
    if (closing) {
      if (!in_barrier && all_said) {
        MPI_Ibarrier(comm, &barrier);
        in_barrier = true;
      }
      if (in_barrier) {
        int done = 0;
        MPI_Test(&barrier, &done, MPI_STATUS_IGNORE);
        if (done) return;
      }
      // A peer that never takes its last heartbeat leaves it in flight; after a timeout, give up on it (the run
      // itself is over) rather than hold the process.
      if (now - closing_since >= timeout) return;
    }
    std::unique_lock<std::mutex> lock(mutex);
    if (closing) {
      wake.wait_for(lock, kClosingPoll);
    } else {
      wake.wait_for(lock, beat, [this] { return stopping; });
    }
  }
}

bool MpiWorld::watch_for_stalls(double timeout_seconds, std::function<void(const std::string& line)> on_stall) {
  if (size_ == 1 || timeout_seconds <= 0 || watchdog_) return true;
  std::vector<std::string> hosts = allgather(host());
  if (thread_level_ < MPI_THREAD_MULTIPLE) return false;  // the same library on every rank: all say so alike
  watchdog_ = std::make_unique<Watchdog>();
  watchdog_->timeout = timeout_seconds;
  watchdog_->on_stall = std::move(on_stall);
  watchdog_->hosts = std::move(hosts);
  MPI_Comm_dup(MPI_COMM_WORLD, &watchdog_->comm);
  watchdog_->thread = std::thread([this] { watchdog_->run(*this); });
  return true;
}

void MpiWorld::stop_watching() {
  if (!watchdog_) return;
  {
    std::lock_guard<std::mutex> lock(watchdog_->mutex);
    watchdog_->stopping = true;
  }
  watchdog_->wake.notify_all();
  watchdog_->thread.join();
  MPI_Comm_free(&watchdog_->comm);
  watchdog_.reset();
}

struct MpiWorld::Notices {
  std::vector<MPI_Request> sends;
  int payload = 1;
  MPI_Request progress = MPI_REQUEST_NULL;
  uint64_t progress_payload[3] = {0, 0, 0};
};

MpiWorld::MpiWorld(int* argc, char*** argv) : notices_(std::make_unique<Notices>()) {
  MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level_);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiWorld::~MpiWorld() {
  stop_watching();
  MPI_Finalize();
}

std::string MpiWorld::broadcast_from_root(const std::string& text) {
  WaitingForPeers waiting;
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
  if (is_root()) {  // rank 0 works (builds each message) and sends: not waiting
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
  WaitingForPeers waiting;
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
  note_activity();
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
  WaitingForPeers waiting;
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
  WaitingForPeers waiting;
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
  WaitingForPeers waiting;
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
