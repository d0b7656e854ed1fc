// The communicator (comm.h) over MPI_COMM_WORLD. With hdf5_mpio.cpp (HDF5's MPI-IO door), the only code that calls MPI.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/mpi/comm.h"

namespace recis_convert {

class MpiWorld final : public Comm {
 public:
  MpiWorld(int* argc, char*** argv);  // MPI_Init_thread, asking for MPI_THREAD_MULTIPLE (the stall watchdog)
  ~MpiWorld() override;               // stops the watchdog, MPI_Finalize
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

  // --stall-timeout (stall_watch.h): a thread of this rank's own sends heartbeats and judges what it hears; on a
  // stall it calls `on_stall` with one line naming the silent or stuck ranks and their hosts, from that thread,
  // and `on_stall` must end the process. Collective (every rank calls it, with the same timeout). No-op for one
  // rank or a timeout of 0; false if this MPI cannot give threads (MPI_THREAD_MULTIPLE): nothing is watched.
  bool watch_for_stalls(double timeout_seconds, std::function<void(const std::string& line)> on_stall);

 private:
  struct Watchdog;        // the heartbeat thread and its communicator
  void stop_watching();
  struct Notices;  // in-flight failure notices and progress messages (MPI requests), kept out of this header
  int rank_ = 0;
  int size_ = 1;
  bool announced_ = false;
  bool peer_failed_ = false;
  int thread_level_ = 0;  // what MPI_Init_thread provided
  std::unique_ptr<Notices> notices_;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace recis_convert
