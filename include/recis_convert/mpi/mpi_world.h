// The only module that calls MPI: the communicator (comm.h) over MPI_COMM_WORLD.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "recis_convert/mpi/comm.h"

namespace recis_convert {

class MpiWorld final : public Comm {
 public:
  MpiWorld(int* argc, char*** argv);  // MPI_Init
  ~MpiWorld() override;               // MPI_Finalize
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string broadcast_from_root(const std::string& text) override;
  std::vector<std::string> gather_to_root(const std::string& text) override;
  std::vector<std::string> allgather(const std::string& text) override;
  std::string scatter_from_root(const std::function<std::string(int rank)>& message_for) override;
  Agreement agree_on_status(int local_status) override;
  void announce_failure() override;
  bool peer_failed() override;
  void post_progress(const ProgressCount& count) override;
  void receive_progress(std::vector<ProgressCount>& latest) override;
  std::string host() const override;
  [[noreturn]] void abort(int exit_code) const override;

 private:
  struct Notices;  // in-flight failure notices and progress messages (MPI requests), kept out of this header
  int rank_ = 0;
  int size_ = 1;
  bool announced_ = false;
  bool peer_failed_ = false;
  std::unique_ptr<Notices> notices_;
};

}  // namespace recis_convert
