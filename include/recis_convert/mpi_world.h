// The only module that calls MPI. Collectives are named for what the pipeline needs them for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace recis_convert {

class MpiWorld {
 public:
  MpiWorld(int* argc, char*** argv);  // MPI_Init
  ~MpiWorld();                        // MPI_Finalize
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // Rank 0's `text` reaches every rank (returned everywhere; the argument is ignored off rank 0).
  std::string broadcast_from_root(const std::string& text) const;

  // The agreement at the barrier: every rank learns the largest status code of all ranks (0 = fine) and how
  // many ranks failed. Also settles every failure notice (below), so none is left in flight at MPI_Finalize.
  struct Agreement {
    int status = 0;
    int failed_ranks = 0;
  };
  Agreement agree_on_status(int local_status);

  // Early stop: a rank that fails tells every other rank at once (small non-blocking messages), and the others
  // check between files, so nobody streams terabytes into an export that will be discarded anyway.
  void announce_failure();
  bool peer_failed();

  // Stream progress for rank 0's progress lines (progress.h). Other ranks post their counts without waiting
  // (at most one message in flight; a count is skipped while the previous one is still travelling) and post a
  // final count when their share is done; rank 0 takes whatever has arrived. Once rank 0 has every final count,
  // no progress message is left in flight (messages from one rank arrive in order).
  struct ProgressCount {
    uint64_t bytes = 0;
    uint64_t files = 0;
    uint64_t final = 0;  // 1 in a rank's last message
  };
  void post_progress(const ProgressCount& count);
  void receive_progress(std::vector<ProgressCount>& latest);  // rank 0: latest[r] updated for ranks heard from

  // Rank 0 receives every rank's text, indexed by rank; other ranks get an empty vector.
  std::vector<std::string> gather_to_root(const std::string& text) const;

  // Every rank receives every rank's text, indexed by rank.
  std::vector<std::string> allgather(const std::string& text) const;

  std::string host() const;

  // Ends every rank of the job at once. Only for states where some ranks could otherwise wait forever in a
  // collective (an unexpected exception on one rank); normal failures go through agree_on_status.
  [[noreturn]] void abort(int exit_code) const;

 private:
  struct Notices;  // in-flight failure notices and progress messages (MPI requests), kept out of this header
  int rank_ = 0;
  int size_ = 1;
  bool announced_ = false;
  bool peer_failed_ = false;
  std::unique_ptr<Notices> notices_;
};

}  // namespace recis_convert
