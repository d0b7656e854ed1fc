#include "recis_convert/publish/resume_journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recis_convert/common/checksum.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/sinks/copy_engine.h"
#include "recis_convert/transforms/job_transforms.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::path_exists;
using testing::TempDir;

class ResumeJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_small_checkpoint(source_.path());
    auto listing = discover_checkpoint(source_.path());
    ASSERT_TRUE(listing) << listing.error().describe();
    listing_ = listing.value();
    staging_ = out_.file("staging");
    ::mkdir(staging_.c_str(), 0755);
  }
  // Exports data file `file` into the staging directory and journals it, as a --resume run does.
  FileResult export_and_journal(size_t file) {
    const RowTransformChain transforms = make_row_transforms(true, {}, EmbeddingDTypes{});
    CopyEngine engine(4096, CopyPath::kKernelWindows, 0);
    FileExportSettings settings{staging_, false, nullptr, nullptr};
    settings.once_durable = [this](const FileResult& done, double) {
      return journal_file(staging_, listing_.ckpt_dir, done, 1.5);
    };
    auto result = export_data_file(listing_, listing_.files[file], transforms, engine, settings);
    EXPECT_TRUE(result) << result.error().describe();
    return result ? result.value() : FileResult{};
  }
  RunFingerprint fingerprint(const std::string& filter = "true") {
    auto f = run_fingerprint(nlohmann::json::parse("{\"filter-optimizer\": " + filter + ", \"report\": \"/r\"}"), source());
    EXPECT_TRUE(f) << f.error().describe();
    return f ? f.value() : RunFingerprint{};
  }
  SourceDescription source() const {
    SourceDescription described;
    described.listing = listing_;
    return described;
  }
  TempDir source_, out_;
  CheckpointListing listing_;
  std::string staging_;
  Log log_{0, true, false};
};

TEST_F(ResumeJournalTest, TheFingerprintIgnoresHowTheWorkIsRunAndSaysWhatChanged) {
  const RunFingerprint first = fingerprint();
  EXPECT_FALSE(first.options.contains("report"));
  // a rerun after a stall (--stall-timeout) may well change the timeout: it changes no byte of the export
  auto watched = run_fingerprint(nlohmann::json::parse(R"({"filter-optimizer": true, "stall-timeout": 60})"), source());
  ASSERT_TRUE(watched);
  EXPECT_EQ(why_not_resumable(first, watched.value()), "");
  EXPECT_EQ(why_not_resumable(first, fingerprint()), "");
  EXPECT_EQ(why_not_resumable(first, fingerprint("false")), "option filter-optimizer differs");
  const std::string data = listing_.ckpt_dir + "/" + listing_.files[0].name;
  struct timeval times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::utimes(data.c_str(), times), 0);
  auto rediscovered = discover_checkpoint(source_.path());  // the next run's discovery stamps the files anew
  ASSERT_TRUE(rediscovered);
  listing_ = rediscovered.value();
  EXPECT_NE(why_not_resumable(first, fingerprint()).find(listing_.files[0].name + " changed"), std::string::npos);
}

TEST_F(ResumeJournalTest, AJournaledFileIsAdoptedOnlyWhileItAndItsSourceCheckOut) {
  ASSERT_TRUE(open_resume_journal(staging_, fingerprint(), false, log_));
  const FileResult done = export_and_journal(0);
  ASSERT_TRUE(done.written);
  auto adopted = adopt_journaled_file(staging_, listing_.ckpt_dir, listing_.files[0], 0, log_);
  ASSERT_TRUE(adopted);
  EXPECT_EQ(adopted->result.checksum, done.checksum);
  EXPECT_EQ(adopted->result.kept.size(), done.kept.size());
  EXPECT_EQ(adopted->seconds, 1.5);
  EXPECT_FALSE(adopt_journaled_file(staging_, listing_.ckpt_dir, listing_.files[1], 0, log_));  // never journaled

  // a staged file that differs from its entry is redone: entry and file removed
  const std::string output = staging_ + "/" + listing_.files[0].name;
  std::string bytes = testing::read_file(output);
  bytes.back() ^= 1;
  testing::write_file(output, bytes);
  EXPECT_FALSE(adopt_journaled_file(staging_, listing_.ckpt_dir, listing_.files[0], 0, log_));
  EXPECT_FALSE(path_exists(output));

  // a source whose header changed since: redone too
  export_and_journal(0);
  const std::string source = listing_.ckpt_dir + "/" + listing_.files[0].name;
  std::string original = testing::read_file(source);
  std::string changed = original;
  changed[10] = changed[10] == 'x' ? 'y' : 'x';  // inside the header's JSON: same size
  struct stat st {};
  ::stat(source.c_str(), &st);
  testing::write_file(source, changed);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, source.c_str(), times, 0);  // same size and time: only the header says it changed
  EXPECT_FALSE(adopt_journaled_file(staging_, listing_.ckpt_dir, listing_.files[0], 0, log_));
  testing::write_file(source, original);
}

TEST_F(ResumeJournalTest, OpeningAdoptsTheJournaledFilesAndClearsTheRestOrStartsAfresh) {
  auto fresh = open_resume_journal(staging_, fingerprint(), false, log_);
  ASSERT_TRUE(fresh) << fresh.error().describe();
  EXPECT_EQ(fresh.value().journaled, 0u);
  export_and_journal(0);
  testing::write_file(staging_ + "/" + listing_.files[1].name, "cut off mid-write");  // no entry
  testing::write_file(staging_ + "/index", "metadata of the last run");
  fresh.value().lock.reset();  // the interrupted run is gone
  auto adopted = open_resume_journal(staging_, fingerprint(), true, log_);
  ASSERT_TRUE(adopted) << adopted.error().describe();
  EXPECT_EQ(adopted.value().journaled, 1u);
  EXPECT_TRUE(path_exists(staging_ + "/" + listing_.files[0].name));
  EXPECT_FALSE(path_exists(staging_ + "/" + listing_.files[1].name));
  EXPECT_FALSE(path_exists(staging_ + "/index"));
  adopted.value().lock.reset();
  // other options: a fresh start, nothing kept but the journal's folder
  auto other = open_resume_journal(staging_, fingerprint("false"), true, log_);
  ASSERT_TRUE(other);
  EXPECT_EQ(other.value().journaled, 0u);
  EXPECT_FALSE(path_exists(staging_ + "/" + listing_.files[0].name));
  EXPECT_FALSE(adopt_journaled_file(staging_, listing_.ckpt_dir, listing_.files[0], 0, log_));
}

// A row table's range: adopted while its regions are the planned ones and hold the journaled bytes; its files stay
// when the journal is opened again, others go.
TEST_F(ResumeJournalTest, ARowRangeIsAdoptedOnlyWhileItsRegionsAreThePlannedOnesAndCheckOut) {
  auto opened = open_resume_journal(staging_, fingerprint(), false, log_);
  ASSERT_TRUE(opened) << opened.error().describe();
  std::string bytes(64, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  testing::write_file(staging_ + "/model-0-of-2.safetensors", bytes);
  testing::write_file(staging_ + "/model-1-of-2.safetensors", bytes);
  const RowRangeResult planned{
      3, 1, 2, {{"model-0-of-2.safetensors", 8, 16, 0}, {"model-1-of-2.safetensors", 40, 0, 0}}, 99, std::nullopt};
  RowRangeResult written = planned;
  written.regions[0].checksum = Checksum::of(bytes.data() + 8, 16);
  written.regions[1].checksum = Checksum::of(nullptr, 0);
  ASSERT_TRUE(journal_rows(staging_, written, 2.5, true));
  auto adopted = adopt_journaled_rows(staging_, planned, log_);
  ASSERT_TRUE(adopted);
  EXPECT_EQ(adopted->seconds, 2.5);
  EXPECT_EQ(adopted->rows->bytes_in, 99u);
  RowRangeResult elsewhere = planned;  // another rank count, or another region: not this entry
  elsewhere.ranges = 3;
  EXPECT_FALSE(adopt_journaled_rows(staging_, elsewhere, log_));
  elsewhere = planned;
  elsewhere.regions[0].offset = 9;
  EXPECT_FALSE(adopt_journaled_rows(staging_, elsewhere, log_));  // removed: the range is written again
  EXPECT_FALSE(adopt_journaled_rows(staging_, planned, log_));

  ASSERT_TRUE(journal_rows(staging_, written, 2.5, true));
  testing::write_file(staging_ + "/stray.safetensors", "no entry names it");
  opened.value().lock.reset();
  auto again = open_resume_journal(staging_, fingerprint(), true, log_);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again.value().journaled, 1u);
  EXPECT_TRUE(path_exists(staging_ + "/model-0-of-2.safetensors"));
  EXPECT_TRUE(path_exists(staging_ + "/model-1-of-2.safetensors"));
  EXPECT_FALSE(path_exists(staging_ + "/stray.safetensors"));
  bytes[23] ^= 1;  // the region's last byte
  testing::write_file(staging_ + "/model-0-of-2.safetensors", bytes);
  EXPECT_FALSE(adopt_journaled_rows(staging_, planned, log_));
}

TEST_F(ResumeJournalTest, ASecondLiveRunIsKeptOutByTheLock) {
  auto first = open_resume_journal(staging_, fingerprint(), false, log_);
  ASSERT_TRUE(first) << first.error().describe();
  // fcntl locks belong to a process: the second run is a child process
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto second = open_resume_journal(staging_, fingerprint(), true, Log(0, true, false));
    const bool refused = !second && second.error().code == ExitCode::kOutput &&
                         second.error().describe().find("another --resume run") != std::string::npos;
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the second run was not refused";
  first.value().lock.reset();  // the first run ends: the next one gets in
  EXPECT_TRUE(open_resume_journal(staging_, fingerprint(), true, log_));
}

TEST_F(ResumeJournalTest, TheResumableStagingDirectoryHasAFixedNameAndOutlivesAFailure) {
  const std::string out = out_.file("export");
  bool existed = true;
  {
    auto staging = StagingDir::create_resumable(out, false, nullptr, &existed);
    ASSERT_TRUE(staging) << staging.error().describe();
    EXPECT_FALSE(existed);
    EXPECT_EQ(staging.value().path(), out_.file(".export.recis-staging.resume"));
    staging.value().discard();
  }
  EXPECT_TRUE(path_exists(out_.file(".export.recis-staging.resume")));
  auto again = StagingDir::create_resumable(out, false, nullptr, &existed);
  ASSERT_TRUE(again);
  EXPECT_TRUE(existed);
  EXPECT_TRUE(again.value().remove_dead_runs().empty());  // not a dead run's directory: kept for the next --resume
  ASSERT_TRUE(again.value().publish(false));
  EXPECT_TRUE(path_exists(out));
}

}  // namespace
}  // namespace recis_convert
