// A topic's consumer-group files as they travel to the mirrors
// (cluster/src/group_files.h): the leader sees a change by name, inode,
// time and size and leaves a damaged file out; the mirror keeps exactly the
// set it is sent, and a damaged file in it changes nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../bus/test_support.h"
#include "group_files.h"
#include "group_offsets.h"
#include "small_files.h"

namespace ringbus::cluster {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> group_file(const std::string& name, std::uint64_t committed) {
  io::GroupOffsets g;
  g.name = name;
  g.committed = {committed};
  return io::encode_group_offsets(g);
}

struct GroupFiles : ::testing::Test {
  fs::path root = fs::temp_directory_path() / ("ringbus-group-files-" + test::unique_instance());
  std::string leader = (root / "leader").string();
  std::string mirror = (root / "mirror").string();
  std::vector<std::string> logged;
  io::LogFn log = [this](const char*, const std::string& m) { logged.push_back(m); };
  GroupFiles() { fs::create_directories(leader); }
  ~GroupFiles() override { fs::remove_all(root); }
  void write(const std::string& dir, const std::string& name, const std::vector<std::byte>& bytes) {
    ASSERT_TRUE(io::replace_file_durably(dir, name + ".offsets", bytes));
  }
  std::uint64_t committed(const std::string& dir, const std::string& name) {
    auto bytes = io::read_small_file(dir + "/" + name + ".offsets");
    if (!bytes) return ~0ULL;
    return io::decode_group_offsets(bytes.value(), name).value().committed[0];
  }
  Status keep(const std::vector<std::vector<std::byte>>& files) {
    std::vector<std::span<const std::byte>> views(files.begin(), files.end());
    return keep_group_files(mirror, views, "the leader 127.0.0.1:1");
  }
};

TEST_F(GroupFiles, TheLeaderSendsTheSetWhenAFileIsReplacedAndLeavesADamagedOneOut) {
  std::optional<std::string> signature;
  auto files = changed_group_files(leader, signature, log);
  ASSERT_TRUE(files) << "the first look sends the set, even empty";
  EXPECT_TRUE(files->empty());
  EXPECT_FALSE(changed_group_files(leader, signature, log)) << "nothing changed";

  write(leader, "billing", group_file("billing", 5));
  files = changed_group_files(leader, signature, log);
  ASSERT_TRUE(files);
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->front(), group_file("billing", 5));
  EXPECT_FALSE(changed_group_files(leader, signature, log));
  write(leader, "billing", group_file("billing", 6));  // the keeper's way: a new file renamed over
  files = changed_group_files(leader, signature, log);
  ASSERT_TRUE(files);
  EXPECT_EQ(files->front(), group_file("billing", 6));

  auto damaged = group_file("audit", 1);
  damaged.back() ^= std::byte{1};
  write(leader, "audit", damaged);
  files = changed_group_files(leader, signature, log);
  ASSERT_TRUE(files);
  EXPECT_EQ(files->size(), 1u) << "only billing";
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("audit.offsets"), std::string::npos) << logged[0];
  EXPECT_NE(logged[0].find("not sent to the mirrors"), std::string::npos) << logged[0];
}

TEST_F(GroupFiles, TheMirrorKeepsExactlyTheSetItIsSent) {
  ASSERT_TRUE(keep({group_file("billing", 5), group_file("audit", 2)}));
  EXPECT_EQ(committed(mirror, "billing"), 5u);
  EXPECT_EQ(committed(mirror, "audit"), 2u);
  ASSERT_TRUE(keep({group_file("billing", 9)}));
  EXPECT_EQ(committed(mirror, "billing"), 9u);
  EXPECT_FALSE(fs::exists(mirror + "/audit.offsets")) << "a group deleted on the leader goes here too";
  ASSERT_TRUE(keep({}));
  EXPECT_TRUE(fs::is_empty(mirror));
}

TEST_F(GroupFiles, ADamagedFileFromTheLeaderChangesNothing) {
  ASSERT_TRUE(keep({group_file("billing", 5)}));
  auto damaged = group_file("audit", 1);
  damaged[20] ^= std::byte{1};
  auto s = keep({group_file("billing", 9), damaged});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::corrupt);
  EXPECT_NE(s.error().message.find("the leader 127.0.0.1:1's group file 1"), std::string::npos) << s.error().message;
  EXPECT_EQ(committed(mirror, "billing"), 5u) << "nothing written";
}

}  // namespace
}  // namespace ringbus::cluster
