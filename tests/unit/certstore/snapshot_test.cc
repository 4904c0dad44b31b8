// Certificate snapshots: ShardedIndex sharing, and Selector updates in
// O(changed) with the lookup semantics of a fresh build.
#include "certstore/snapshot.h"

#include <gtest/gtest.h>

#include <string>

#include "certstore/selector.h"

namespace tlsedge::certstore {
namespace {

using Outcome = Selector::Outcome;

CredentialsPtr fake(const std::string& name) {
  auto c = std::make_shared<Credentials>();
  c->name = name;
  return c;
}

// Counts shard pointers that differ between two indexes.
template <class V>
size_t changedShards(const ShardedIndex<V>& a, const ShardedIndex<V>& b) {
  auto x = a.shards();
  auto y = b.shards();
  size_t n = 0;
  for (size_t i = 0; i < x.size(); ++i) n += x[i] != y[i];
  return n;
}

TEST(ShardedIndexTest, BuildFindSetErase) {
  std::vector<ShardedIndex<int>::Entry> entries;
  for (int i = 0; i < 10000; ++i) entries.emplace_back("host-" + std::to_string(i), i);
  entries.emplace_back("host-7", -1);  // duplicate: the first wins
  auto index = ShardedIndex<int>::build(std::move(entries));
  EXPECT_EQ(index.size(), 10000u);
  ASSERT_NE(index.find("host-7"), nullptr);
  EXPECT_EQ(*index.find("host-7"), 7);
  EXPECT_EQ(index.find("host-10000"), nullptr);

  size_t copied = 0;
  auto added = index.set("new", 42, &copied);
  EXPECT_EQ(added.size(), 10001u);
  EXPECT_EQ(*added.find("new"), 42);
  EXPECT_EQ(index.find("new"), nullptr);  // the old one is untouched
  EXPECT_GT(copied, 0u);
  EXPECT_LT(copied, 16384u);  // root + branch + one small shard
  EXPECT_EQ(changedShards(index, added), 1u);

  auto replaced = added.set("host-3", 33);
  EXPECT_EQ(replaced.size(), 10001u);
  EXPECT_EQ(*replaced.find("host-3"), 33);
  EXPECT_EQ(*added.find("host-3"), 3);
  EXPECT_EQ(changedShards(added, replaced), 1u);

  auto removed = replaced.erase("host-3");
  EXPECT_EQ(removed.size(), 10000u);
  EXPECT_EQ(removed.find("host-3"), nullptr);
  EXPECT_EQ(changedShards(replaced, removed), 1u);
  if (replaced.shardFor("host-9") != replaced.shardFor("host-3")) {
    EXPECT_EQ(removed.shardFor("host-9"), replaced.shardFor("host-9"));
  }
  // Erasing what is absent changes nothing.
  EXPECT_EQ(changedShards(removed, removed.erase("absent")), 0u);

  size_t count = 0;
  removed.forEach([&](const std::string&, int) { ++count; });
  EXPECT_EQ(count, 10000u);
}

class SnapshotTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Selector> make(size_t n) {
    Selector::Input input;
    for (size_t i = 0; i < n; ++i) {
      const std::string name = "c" + std::to_string(i);
      input.certificates.push_back(fake(name));
      input.hosts.emplace_back("site" + std::to_string(i) + ".example", name);
      input.hosts.emplace_back("www.site" + std::to_string(i) + ".example", name);
    }
    input.certificates.push_back(fake("wild"));
    input.hosts.emplace_back("*.wild.example", "wild");
    input.certificates.push_back(fake("default"));
    input.defaultName = "default";
    return Selector::make(std::move(input));
  }
};

TEST_F(SnapshotTest, LookupSemantics) {
  auto s = make(100);
  EXPECT_EQ(s->certificateCount(), 102u);
  EXPECT_EQ(s->hostCount(), 201u);
  auto c = s->select("WWW.Site42.example.");
  EXPECT_EQ(c.outcome, Outcome::kExact);
  EXPECT_EQ(c.credentials, s->credentials("c42"));
  c = s->select("a.wild.example");
  EXPECT_EQ(c.outcome, Outcome::kWildcard);
  EXPECT_EQ(c.credentials, s->credentials("wild"));
  EXPECT_EQ(s->select("*.wild.example").outcome, Outcome::kWildcard);
  EXPECT_EQ(s->select("a.b.wild.example").outcome, Outcome::kDefault);
  EXPECT_EQ(s->select("wild.example").outcome, Outcome::kDefault);
  EXPECT_EQ(s->select("nope.example").credentials, s->credentials("default"));
  EXPECT_EQ(s->select("").outcome, Outcome::kDefault);
}

TEST_F(SnapshotTest, ReplaceSharesEveryOtherShard) {
  auto s = make(5000);
  size_t copied = 0;
  auto next = s->withCertificate(fake("c7"), &copied);
  const Credentials* fresh = next->credentials("c7");
  ASSERT_NE(fresh, nullptr);
  EXPECT_NE(fresh, s->credentials("c7"));
  EXPECT_EQ(next->select("site7.example").credentials, fresh);
  EXPECT_EQ(next->select("www.site7.example").credentials, fresh);
  // The old snapshot still serves the old one (handshakes in progress).
  EXPECT_EQ(s->select("site7.example").credentials, s->credentials("c7"));
  // Two hosts and one name changed: at most two host shards and one name
  // shard are new; all other shard pointers are the same objects.
  EXPECT_LE(changedShards(s->hostIndex(), next->hostIndex()), 2u);
  EXPECT_EQ(changedShards(s->nameIndex(), next->nameIndex()), 1u);
  EXPECT_EQ(next->select("site8.example").credentials, s->credentials("c8"));
  EXPECT_LT(copied, 64u * 1024);
}

TEST_F(SnapshotTest, AddRemoveAndRebind) {
  auto s = make(10);
  auto added = s->withCertificate(fake("new"))->withHost("new.example", "new");
  EXPECT_EQ(added->select("new.example").credentials, added->credentials("new"));
  EXPECT_EQ(added->select("new.example").outcome, Outcome::kExact);
  EXPECT_EQ(s->select("new.example").outcome, Outcome::kDefault);
  // Unknown certificate: nothing bound.
  EXPECT_EQ(s->withHost("x.example", "absent")->select("x.example").outcome, Outcome::kDefault);

  auto rebound = added->withHost("site3.example", "new");
  EXPECT_EQ(rebound->select("site3.example").credentials, added->credentials("new"));
  // The host left c3: replacing c3 no longer moves it.
  auto replaced = rebound->withCertificate(fake("c3"));
  EXPECT_EQ(replaced->select("site3.example").credentials, added->credentials("new"));
  EXPECT_EQ(replaced->select("www.site3.example").credentials, replaced->credentials("c3"));

  auto removed = replaced->withoutCertificate("c3");
  EXPECT_EQ(removed->credentials("c3"), nullptr);
  EXPECT_EQ(removed->select("www.site3.example").outcome, Outcome::kDefault);
  EXPECT_EQ(removed->certificateCount(), replaced->certificateCount() - 1);
  auto unbound = removed->withoutHost("site3.example");
  EXPECT_EQ(unbound->select("site3.example").outcome, Outcome::kDefault);

  // Replacing the default moves the fallback too; removing it leaves none.
  auto newDefault = s->withCertificate(fake("default"));
  EXPECT_EQ(newDefault->select("nope.example").credentials, newDefault->credentials("default"));
  EXPECT_NE(newDefault->credentials("default"), s->credentials("default"));
  EXPECT_EQ(s->withoutCertificate("default")->select("nope.example").outcome, Outcome::kMiss);
}

}  // namespace
}  // namespace tlsedge::certstore
