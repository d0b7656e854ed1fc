#include "recis_convert/publish/serving_root.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

#include "recis_convert/publish/staging.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::path_exists;
using testing::TempDir;

VersionRecord record(const std::string& name, std::optional<int64_t> step) {
  VersionRecord v;
  v.version = name;
  v.step = step;
  v.published_at = "2026-12-03T00:00:00Z";
  return v;
}

std::vector<std::string> names(const VersionsFile& f) {
  std::vector<std::string> out;
  for (const auto& v : f.versions) out.push_back(v.version);
  return out;
}

// A version directory as an export of this tool (or of another, with `tool`).
void make_version(const std::string& root, const std::string& name, const std::string& tool = "recis-convert") {
  ::mkdir((root + "/" + name).c_str(), 0755);
  testing::write_file(root + "/" + name + "/manifest.json", "{\"tool\": {\"name\": \"" + tool + "\"}}");
}

std::string link_target(const std::string& path) {
  char target[PATH_MAX] = {0};
  ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
  return n < 0 ? "" : std::string(target, static_cast<size_t>(n));
}

TEST(ServingRootTest, VersionNamesArePlainDirectoryNames) {
  for (const char* good : {"ckpt_2000", "nightly-2026-12-03", "v1.2"}) EXPECT_TRUE(check_version_name(good)) << good;
  for (const char* bad : {"", ".", "..", "current", "versions.json", ".hidden", "a/b"}) {
    auto checked = check_version_name(bad);
    ASSERT_FALSE(checked) << bad;
    EXPECT_EQ(checked.error().code, ExitCode::kUsage);
  }
}

TEST(ServingRootTest, CurrentIsTheNewestStepAndARepublishReplacesItsRecord) {
  VersionsFile before;
  before.versions = {record("ckpt_100", 100), record("ckpt_300", 300)};
  // a rerun of an older checkpoint is recorded, but current stays at the newest step
  auto plan = plan_versions(before, record("ckpt_200", 200), std::nullopt);
  EXPECT_EQ(names(plan.after), (std::vector<std::string>{"ckpt_100", "ckpt_300", "ckpt_200"}));
  EXPECT_EQ(plan.after.current, "ckpt_300");
  EXPECT_TRUE(plan.remove.empty());
  // the same version again (--overwrite) moves to the end of the publish order: at an equal step it wins
  plan = plan_versions(plan.after, record("again", 300), std::nullopt);
  EXPECT_EQ(plan.after.current, "again");
  plan = plan_versions(plan.after, record("ckpt_100", 100), std::nullopt);
  EXPECT_EQ(names(plan.after), (std::vector<std::string>{"ckpt_300", "ckpt_200", "again", "ckpt_100"}));
  EXPECT_EQ(plan.after.current, "again");
}

TEST(ServingRootTest, KeepRemovesTheOldestByStepAndNeverTheCurrentOne) {
  VersionsFile before;
  before.versions = {record("no-step", std::nullopt), record("ckpt_300", 300), record("ckpt_100", 100)};
  auto plan = plan_versions(before, record("ckpt_200", 200), 2);
  EXPECT_EQ(plan.after.current, "ckpt_300");
  EXPECT_EQ(plan.remove, (std::vector<std::string>{"no-step", "ckpt_100"}));  // no step is older than any step
  plan = plan_versions(before, record("ckpt_50", 50), 1);
  EXPECT_EQ(plan.after.current, "ckpt_300");
  EXPECT_EQ(plan.remove, (std::vector<std::string>{"no-step", "ckpt_50", "ckpt_100"}));
  // without steps at all, publish order decides
  VersionsFile unstepped;
  unstepped.versions = {record("a", std::nullopt), record("b", std::nullopt)};
  plan = plan_versions(unstepped, record("c", std::nullopt), 2);
  EXPECT_EQ(plan.after.current, "c");
  EXPECT_EQ(plan.remove, (std::vector<std::string>{"a"}));
}

TEST(ServingRootTest, RecordingRepointsCurrentWritesTheListAndKeepsOnlyThisToolsVersions) {
  TempDir dir;
  const std::string root = dir.file("serve");
  ASSERT_TRUE(ensure_publish_root(root));
  Log log(0, true, false);
  make_version(root, "ckpt_100");
  auto first = record_published_version(root, record("ckpt_100", 100), 2, log);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(link_target(root + "/current"), "ckpt_100");
  make_version(root, "foreign", "some-other-tool");
  make_version(root, "ckpt_200");
  // "foreign" is listed (say, by hand) but not this tool's: --keep leaves it and says so
  VersionsFile listed = first.value();
  listed.versions.insert(listed.versions.begin(), record("foreign", 10));
  testing::write_file(root + "/versions.json", versions_json(listed));
  auto second = record_published_version(root, record("ckpt_200", 200), 1, log);
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_EQ(link_target(root + "/current"), "ckpt_200");
  EXPECT_TRUE(path_exists(root + "/foreign"));
  EXPECT_FALSE(path_exists(root + "/ckpt_100"));
  EXPECT_EQ(names(second.value()), (std::vector<std::string>{"foreign", "ckpt_200"}));
  auto reread = read_versions_file(root);
  ASSERT_TRUE(reread) << reread.error().describe();
  EXPECT_EQ(names(reread.value()), names(second.value()));
  EXPECT_EQ(reread.value().current, "ckpt_200");
  EXPECT_EQ(reread.value().versions.back().step, std::optional<int64_t>(200));
  // a version deleted by hand drops out of the list
  ASSERT_TRUE(remove_tree(root + "/foreign"));
  make_version(root, "ckpt_300");
  auto third = record_published_version(root, record("ckpt_300", 300), std::nullopt, log);
  ASSERT_TRUE(third);
  EXPECT_EQ(names(third.value()), (std::vector<std::string>{"ckpt_200", "ckpt_300"}));
}

TEST(ServingRootTest, ACurrentThatIsNotASymlinkIsNotReplaced) {
  TempDir dir;
  const std::string root = dir.file("serve");
  ASSERT_TRUE(ensure_publish_root(root));
  ::mkdir((root + "/current").c_str(), 0755);
  make_version(root, "ckpt_100");
  auto recorded = record_published_version(root, record("ckpt_100", 100), std::nullopt, Log(0, true, false));
  ASSERT_FALSE(recorded);
  EXPECT_EQ(recorded.error().code, ExitCode::kOutput);
  EXPECT_NE(recorded.error().describe().find("not a symlink"), std::string::npos);
}

TEST(ServingRootTest, AnUnreadableVersionsFileIsAnErrorAndAMissingOneAnEmptyRoot) {
  TempDir dir;
  auto empty = read_versions_file(dir.path());
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value().versions.empty());
  testing::write_file(dir.file("versions.json"), "{\"versions\": 3}");
  auto bad = read_versions_file(dir.path());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ExitCode::kOutput);
  testing::write_file(dir.file("file"), "x");
  EXPECT_FALSE(ensure_publish_root(dir.file("file")));
  EXPECT_FALSE(ensure_publish_root(dir.file("missing/root")));
}

TEST(ServingRootTest, AVersionIsMeasuredWithItsFolders) {
  TempDir dir;
  ::mkdir(dir.file("v").c_str(), 0755);
  ::mkdir(dir.file("v/dense").c_str(), 0755);
  testing::write_file(dir.file("v/a"), "12345");
  testing::write_file(dir.file("v/dense/b"), "123");
  VersionRecord v;
  measure_version(dir.file("v"), v);
  EXPECT_EQ(v.files, 2u);
  EXPECT_EQ(v.bytes, 8u);
}

}  // namespace
}  // namespace recis_convert
