#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <string>

#include "core/partition.h"

namespace herald {

// Reference values of Kafka's Utils.murmur2 (as published in its unit tests).
TEST(PartitionTest, Murmur2MatchesKafkaReferenceValues) {
  EXPECT_EQ(static_cast<std::int32_t>(KafkaMurmur2("21")), -973932308);
  EXPECT_EQ(static_cast<std::int32_t>(KafkaMurmur2("foobar")), -790332482);
  EXPECT_EQ(static_cast<std::int32_t>(KafkaMurmur2("a-little-bit-long-string")), -985981536);
  EXPECT_EQ(static_cast<std::int32_t>(KafkaMurmur2("a-little-bit-longer-string")), -1486304829);
  EXPECT_EQ(static_cast<std::int32_t>(KafkaMurmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")),
            -58897971);
}

// The partition of a user equals the partition librdkafka's murmur2 partitioner
// picks for a message keyed by that user id, so Kafka topics line up with shards.
TEST(PartitionTest, AgreesWithLibrdkafkaMurmur2Partitioner) {
  for (int32_t parts : {1, 7, 64, 1000}) {
    Partitioner p(static_cast<std::uint32_t>(parts));
    for (int i = 0; i < 2000; ++i) {
      std::string user = "user-" + std::to_string(i * 7919);
      int32_t kafka = rd_kafka_msg_partitioner_murmur2(nullptr, user.data(), user.size(), parts,
                                                       nullptr, nullptr);
      ASSERT_EQ(static_cast<int32_t>(p.PartitionOf(user)), kafka) << user;
    }
  }
}

TEST(PartitionTest, SpreadsUsersEvenly) {
  Partitioner p(64);
  std::map<PartitionId, int> counts;
  for (int i = 0; i < 64000; ++i) counts[p.PartitionOf("u" + std::to_string(i))]++;
  ASSERT_EQ(counts.size(), 64u);
  for (auto& [part, n] : counts) {
    EXPECT_GT(n, 800) << part;
    EXPECT_LT(n, 1200) << part;
  }
}

}  // namespace herald
