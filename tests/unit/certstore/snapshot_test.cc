// Certificate snapshots: ShardedIndex sharing, and Selector updates in
// O(changed) with the lookup semantics of a fresh build.
#include "certstore/snapshot.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

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

// Keys "prefix-I" that land in the same shard as the first one, `count` of them.
std::vector<std::string> keysInOneShard(const std::string& prefix, size_t count) {
  std::vector<std::string> out{prefix + "-0"};
  const size_t shard = ShardedIndex<int>::shardIndexOf(out[0]);
  for (size_t i = 1; out.size() < count; ++i) {
    std::string key = prefix + "-" + std::to_string(i);
    if (ShardedIndex<int>::shardIndexOf(key) == shard) out.push_back(std::move(key));
  }
  return out;
}

TEST(ShardedIndexTest, CrowdedShardFindsEveryKey) {
  // Many entries in one shard: collisions on home slots, probing, misses.
  auto keys = keysInOneShard("crowd", 21);
  std::vector<ShardedIndex<int>::Entry> entries;
  for (size_t i = 0; i + 1 < keys.size(); ++i) entries.emplace_back(keys[i], static_cast<int>(i));
  auto index = ShardedIndex<int>::build(std::move(entries));
  ASSERT_EQ(index.size(), 20u);
  ASSERT_EQ(index.shardFor(keys[0])->size(), 20u);
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    ASSERT_NE(index.find(keys[i]), nullptr) << keys[i];
    EXPECT_EQ(*index.find(keys[i]), static_cast<int>(i));
  }
  EXPECT_EQ(index.find(keys.back()), nullptr);  // same shard, absent
  auto grown = index.set(keys.back(), 99);
  EXPECT_EQ(*grown.find(keys.back()), 99);
  EXPECT_EQ(grown.shardFor(keys[0])->size(), 21u);
  auto shrunk = grown.erase(keys[5]);
  EXPECT_EQ(shrunk.find(keys[5]), nullptr);
  EXPECT_EQ(*shrunk.find(keys[6]), 6);
  EXPECT_EQ(*shrunk.find(keys.back()), 99);
}

TEST(ShardedIndexTest, ProbingSurvivesEveryRemovalOrder) {
  // 40 keys in one shard collide on home slots and wrap around the table;
  // removing them one by one rebuilds the shard each time and must keep
  // every other key reachable (no tombstones to get wrong).
  auto keys = keysInOneShard("probe", 40);
  std::vector<ShardedIndex<int>::Entry> entries;
  for (size_t i = 0; i < keys.size(); ++i) entries.emplace_back(keys[i], static_cast<int>(i));
  auto index = ShardedIndex<int>::build(std::move(entries));
  ASSERT_GE(index.shardFor(keys[0])->capacity(), 80u);  // 2 x 40, plus the size class's spare room
  for (size_t gone = 0; gone < keys.size(); ++gone) {
    index = index.erase(keys[(gone * 7) % keys.size()]);
    ASSERT_EQ(index.size(), keys.size() - gone - 1);
    for (size_t i = 0; i < keys.size(); ++i) {
      bool removed = false;
      for (size_t g = 0; g <= gone; ++g) removed |= (g * 7) % keys.size() == i;
      if (removed) {
        EXPECT_EQ(index.find(keys[i]), nullptr) << keys[i];
      } else {
        ASSERT_NE(index.find(keys[i]), nullptr) << keys[i];
        EXPECT_EQ(*index.find(keys[i]), static_cast<int>(i));
      }
    }
  }
  EXPECT_EQ(index.shardFor(keys[0]), nullptr);  // an emptied shard is freed
}

TEST(ShardedIndexTest, LongShortAndEmptyKeys) {
  using Index = ShardedIndex<int>;
  const size_t inlined = Index::Shard::kInlineKey;
  std::vector<std::string> keys = {"",
                                   "a",
                                   std::string(inlined, 'x'),
                                   std::string(inlined + 1, 'x'),
                                   std::string(253, 'y'),
                                   std::string(4000, 'z')};
  // Long keys that share a shard with a short one: offsets in the tail.
  for (const std::string& k : keysInOneShard(std::string(100, 'w'), 3)) keys.push_back(k);
  std::vector<Index::Entry> entries;
  for (size_t i = 0; i < keys.size(); ++i) entries.emplace_back(keys[i], static_cast<int>(i));
  auto index = Index::build(entries);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_NE(index.find(keys[i]), nullptr) << keys[i].size();
    EXPECT_EQ(*index.find(keys[i]), static_cast<int>(i));
  }
  EXPECT_EQ(index.find(std::string(inlined + 2, 'x')), nullptr);
  EXPECT_EQ(index.find(std::string(252, 'y')), nullptr);
  auto changed = index.set(std::string(4000, 'z'), -5).erase(std::string(inlined + 1, 'x'));
  EXPECT_EQ(*changed.find(std::string(4000, 'z')), -5);
  EXPECT_EQ(changed.find(std::string(inlined + 1, 'x')), nullptr);
  EXPECT_EQ(*changed.find(std::string(253, 'y')), 4);
  std::map<std::string, int> listed;
  index.forEach([&](const std::string& k, int v) { listed[k] = v; });
  ASSERT_EQ(listed.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(listed[keys[i]], static_cast<int>(i));
  EXPECT_THROW(index.set(std::string(Index::kMaxKeyLength + 1, 'k'), 1), std::length_error);
}

TEST(ShardedIndexTest, ValuesLiveAsLongAsAnIndexSharesThem) {
  auto value = std::make_shared<int>(7);
  {
    std::vector<ShardedIndex<std::shared_ptr<int>>::Entry> entries;
    for (int i = 0; i < 1000; ++i) entries.emplace_back("k" + std::to_string(i), value);
    auto first = std::make_unique<ShardedIndex<std::shared_ptr<int>>>(
        ShardedIndex<std::shared_ptr<int>>::build(std::move(entries)));
    EXPECT_EQ(value.use_count(), 1001);
    auto second = first->set("k1", std::make_shared<int>(8)).erase("k2");
    first.reset();                          // the copy still reads every shard it shares
    EXPECT_EQ(value.use_count(), 1 + 998);  // each remaining key holds it once
    EXPECT_EQ(**second.find("k999"), 7);
    EXPECT_EQ(**second.find("k1"), 8);
  }
  EXPECT_EQ(value.use_count(), 1);
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
// Selection order: exact > one-label wildcard > the site's own fallback >
// the configured default > refuse (tls.unknown_sni: reject).
TEST(SelectionOrderTest, ExactWildcardSiteFallbackDefaultRefuse) {
  Selector::Input input;
  for (const char* name : {"exact", "wild", "spare", "wild-spare", "default"}) {
    input.certificates.push_back(fake(name));
  }
  input.hosts = {{"a.example", "exact"}, {"*.example", "wild"}};
  // Site `a` (a.example, b.example) falls back to `spare`; site `w`
  // (*.other.example) to `wild-spare`. b.example has no certificate of its own.
  input.fallbacks = {
      {"a.example", "spare"}, {"b.example", "spare"}, {"*.other.example", "wild-spare"}};
  input.defaultName = "default";
  auto s = Selector::make(input);
  auto pick = [&](const std::shared_ptr<const Selector>& sel, const char* sni) {
    auto c = sel->select(sni);
    return std::make_pair(c.credentials != nullptr ? c.credentials->name : "", c.outcome);
  };
  EXPECT_EQ(pick(s, "a.example"), std::make_pair(std::string("exact"), Outcome::kExact));
  // A wildcard site host matches before b.example's own fallback.
  EXPECT_EQ(pick(s, "B.example."), std::make_pair(std::string("wild"), Outcome::kWildcard));
  EXPECT_EQ(pick(s, "x.other.example"),
            std::make_pair(std::string("wild-spare"), Outcome::kSiteFallback));
  EXPECT_EQ(pick(s, "nowhere.test"), std::make_pair(std::string("default"), Outcome::kDefault));

  // Without the wildcard: b.example gets its site's fallback; a.example too
  // once its own certificate is gone.
  auto noWild = s->withoutCertificate("wild")->withoutCertificate("exact");
  EXPECT_EQ(pick(noWild, "b.example"),
            std::make_pair(std::string("spare"), Outcome::kSiteFallback));
  EXPECT_EQ(pick(noWild, "a.example"),
            std::make_pair(std::string("spare"), Outcome::kSiteFallback));
  // A fallback certificate swapped is seen at once; removed, the default serves.
  auto swapped = noWild->withCertificate(fake("spare"));
  EXPECT_NE(swapped->select("a.example").credentials, noWild->select("a.example").credentials);
  auto noSpare = noWild->withoutCertificate("spare");
  EXPECT_EQ(pick(noSpare, "a.example"), std::make_pair(std::string("default"), Outcome::kDefault));

  // Under reject: a site host with a fallback is still served, others refused.
  input.rejectUnknown = true;
  auto reject = Selector::make(input)->withoutCertificate("wild");
  EXPECT_EQ(pick(reject, "b.example"),
            std::make_pair(std::string("spare"), Outcome::kSiteFallback));
  EXPECT_EQ(pick(reject, "nowhere.test"), std::make_pair(std::string(), Outcome::kMiss));
  // The exact hit never looks at the fallbacks: same answer without them.
  input.fallbacks.clear();
  EXPECT_EQ(pick(Selector::make(input), "a.example"),
            std::make_pair(std::string("exact"), Outcome::kExact));
}

}  // namespace tlsedge::certstore
