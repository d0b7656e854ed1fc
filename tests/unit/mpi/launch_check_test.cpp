#include "recis_convert/mpi/launch_check.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace recis_convert {
namespace {

EnvironmentLookup fake(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(LaunchCheckTest, SrunWithoutPmixIsRefused) {
  auto message = detect_split_launch(fake({{"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_NTASKS", "4"},
                                           {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "2"}}));
  ASSERT_TRUE(message);
  EXPECT_NE(message->find("Slurm started 4 tasks without PMIx"), std::string::npos);
  EXPECT_NE(message->find("--mpi=pmix"), std::string::npos);
  // --mpi=pmi2: PMI-2's variables, which this Open MPI cannot use
  EXPECT_TRUE(detect_split_launch(fake({{"SLURM_STEP_NUM_TASKS", "2"}, {"PMI_RANK", "0"}, {"PMI_FD", "5"}})));
  // older Slurm: only SLURM_NTASKS, but inside a step
  EXPECT_TRUE(detect_split_launch(fake({{"SLURM_NTASKS", "2"}, {"SLURM_STEP_ID", "3"}})));
}

TEST(LaunchCheckTest, ProperLaunchesPass) {
  // srun --mpi=pmix: PMIx joins the tasks
  EXPECT_FALSE(detect_split_launch(fake({{"SLURM_STEP_NUM_TASKS", "4"}, {"PMIX_RANK", "3"}})));
  // mpirun -np 1 inside a 4-task allocation: the user asked for one rank
  EXPECT_FALSE(detect_split_launch(fake({{"SLURM_NTASKS", "4"}, {"OMPI_COMM_WORLD_SIZE", "1"},
                                         {"SLURM_STEP_NUM_TASKS", "4"}})));
  // a plain run in the batch script of a 4-task allocation (no step yet)
  EXPECT_FALSE(detect_split_launch(fake({{"SLURM_NTASKS", "4"}})));
  // srun -n 1, and no Slurm at all
  EXPECT_FALSE(detect_split_launch(fake({{"SLURM_STEP_NUM_TASKS", "1"}, {"SLURM_STEP_ID", "0"}})));
  EXPECT_FALSE(detect_split_launch(fake({})));
  EXPECT_FALSE(detect_split_launch(fake({{"SLURM_STEP_NUM_TASKS", "garbage"}})));
}

}  // namespace
}  // namespace recis_convert
