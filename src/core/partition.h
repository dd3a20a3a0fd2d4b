// Partitioning: which partition owns a user.
//
//   partition = (murmur2(user_id) & 0x7fffffff) mod P
//
// murmur2 here is Kafka's variant (seed 0x9747b28c, the same function as the Java
// client's default partitioner and librdkafka's "murmur2" partitioner), applied to
// the raw bytes of the user id. A Kafka producer that keys herald.events by user id
// therefore lands each event in the partition that owns the user. This function is
// an on-disk and on-wire format: changing it re-homes every user, so it never changes.
#pragma once

#include <cstdint>
#include <string_view>

namespace herald {

using PartitionId = std::uint32_t;

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) as an unsigned value.
std::uint32_t KafkaMurmur2(std::string_view data);

class Partitioner {
 public:
  explicit Partitioner(std::uint32_t partitions) : partitions_(partitions ? partitions : 1) {}
  std::uint32_t partitions() const { return partitions_; }
  PartitionId PartitionOf(std::string_view user_id) const {
    return (KafkaMurmur2(user_id) & 0x7fffffffu) % partitions_;
  }

 private:
  std::uint32_t partitions_;
};

}  // namespace herald
