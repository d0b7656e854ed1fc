// The communicator the job talks to, as an interface (after ADIOS2's helper::Comm). MpiWorld (mpi_world.h) is the
// real one and, with HDF5's door to MPI-IO (hdf5_mpio.h), the only code that calls MPI; SerialComm is a one-rank
// stand-in, so that the stages that talk to other ranks run in unit tests without mpirun. Collectives are named for
// what the job needs them for; typed messages on top of the text ones are in messages.h.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace recis_convert {

class Comm {
 public:
  virtual ~Comm() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }

  // Rank 0's `text` reaches every rank (returned everywhere; the argument is ignored off rank 0).
  virtual std::string broadcast_from_root(const std::string& text) = 0;

  // Rank 0 receives every rank's text, indexed by rank; other ranks get an empty vector.
  virtual std::vector<std::string> gather_to_root(const std::string& text) = 0;

  // Every rank receives every rank's text, indexed by rank.
  virtual std::vector<std::string> allgather(const std::string& text) = 0;

  // Each rank receives its own text from rank 0: message_for(r) runs on rank 0 only, once per rank, one rank at a
  // time (so rank 0 holds one message at a time, not all of them). Rank 0 returns message_for(0).
  virtual std::string scatter_from_root(const std::function<std::string(int rank)>& message_for) = 0;

  // The agreement at the barrier: every rank learns the largest status code of all ranks (0 = fine) and how
  // many ranks failed. Also settles every failure notice (below), so none is left in flight at the end.
  struct Agreement {
    int status = 0;
    int failed_ranks = 0;
  };
  virtual Agreement agree_on_status(int local_status) = 0;

  // Early stop: a rank that fails tells every other rank at once (small non-blocking messages), and the others
  // check between pieces of work, so nobody streams terabytes into an export that will be discarded anyway.
  virtual void announce_failure() = 0;
  virtual bool peer_failed() = 0;

  // Stream progress for rank 0's progress lines (progress.h). Other ranks post their counts without waiting
  // (at most one message in flight; a count is skipped while the previous one is still travelling) and post a
  // final count when their share is done; rank 0 takes whatever has arrived. Once rank 0 has every final count,
  // no progress message is left in flight (messages from one rank arrive in order).
  struct ProgressCount {
    uint64_t bytes = 0;
    uint64_t files = 0;
    uint64_t final = 0;  // 1 in a rank's last message
  };
  virtual void post_progress(const ProgressCount& count) = 0;
  virtual void receive_progress(std::vector<ProgressCount>& latest) = 0;  // rank 0: latest[r] for ranks heard from

  virtual std::string host() const = 0;

  // Ends every rank of the job at once. Only for states where some ranks could otherwise wait forever in a
  // collective (an unexpected exception on one rank); normal failures go through agree_on_status.
  [[noreturn]] virtual void abort(int exit_code) const = 0;
};

// One rank, no MPI: every collective returns this rank's own contribution.
class SerialComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string broadcast_from_root(const std::string& text) override { return text; }
  std::vector<std::string> gather_to_root(const std::string& text) override { return {text}; }
  std::vector<std::string> allgather(const std::string& text) override { return {text}; }
  std::string scatter_from_root(const std::function<std::string(int rank)>& message_for) override {
    return message_for(0);
  }
  Agreement agree_on_status(int local_status) override { return {local_status, announced_ ? 1 : 0}; }
  void announce_failure() override { announced_ = true; }
  bool peer_failed() override { return false; }
  void post_progress(const ProgressCount&) override {}
  void receive_progress(std::vector<ProgressCount>& latest) override { latest.resize(1); }
  std::string host() const override { return "localhost"; }
  [[noreturn]] void abort(int exit_code) const override { std::_Exit(exit_code); }

 private:
  bool announced_ = false;
};

}  // namespace recis_convert
