#include "recis_convert/publish/staging_reach.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "recis_convert/mpi/rank_hosts.h"

namespace recis_convert {
namespace {

// What keeps this process from writing into `dir`, or "".
std::string problem_with(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return "not a directory";
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return std::strerror(errno);
  return "";
}

}  // namespace

Status check_staging_reaches_every_rank(Comm& comm, const std::string& staging_dir, const std::string& export_dir) {
  const std::vector<std::string> problems = comm.allgather(problem_with(staging_dir));
  std::vector<int> unreached;
  for (size_t r = 0; r < problems.size(); ++r) {
    if (!problems[r].empty()) unreached.push_back(static_cast<int>(r));
  }
  if (unreached.empty()) return Ok{};  // every rank knows: the hosts are gathered only for the message
  const std::vector<std::string> hosts = comm.allgather(comm.host());
  return output_error(export_dir, "rank 0 staged it, but " + ranks_on_hosts(unreached, hosts) +
                                      " cannot reach it (" + problems[static_cast<size_t>(unreached.front())] +
                                      "): the export directory must be on a file system every node shares; "
                                      "nothing was written");
}

}  // namespace recis_convert
