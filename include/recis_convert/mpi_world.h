// The only module that calls MPI. Collectives are named for what the pipeline needs them for.
#pragma once

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

  // Every rank learns the largest status code of all ranks (0 = fine): the agreement at the barrier.
  int agree_on_status(int local_status) const;

  // Rank 0 receives every rank's text, indexed by rank; other ranks get an empty vector.
  std::vector<std::string> gather_to_root(const std::string& text) const;

  std::string host() const;

  // Ends every rank of the job at once. Only for states where some ranks could otherwise wait forever in a
  // collective (an unexpected exception on one rank); normal failures go through agree_on_status.
  [[noreturn]] void abort(int exit_code) const;

 private:
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace recis_convert
