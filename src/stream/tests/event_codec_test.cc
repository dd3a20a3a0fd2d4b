// EncodeEvent / DecodeEvent: round trips, and corruption detected, never crashed on.
#include "stream/event_codec.h"

#include <gtest/gtest.h>

namespace herald::stream {
namespace {

Event Full() {
  Event e;
  e.tenant = "acme";
  e.user_id = "user-42";
  e.type = EventType::kLocation;
  e.ts = 1767571200123456;
  e.account_id = "a1";
  e.message_id = "m1";
  e.campaign_id = "c1";
  e.attrs = R"({"lat":39.9,"lng":116.4,"tags":["x","y"],"item":"i1"})";
  e.lat = 39.9;
  e.lng = 116.4;
  e.item = "i1";
  e.tags = {"x", "y"};
  return e;
}

TEST(EventCodecTest, FullEventRoundTrips) {
  const Event e = Full();
  std::string bytes = EncodeEvent(e);
  EXPECT_EQ(bytes[0], static_cast<char>(kEventEncodingVersion));
  Result<Event> back = DecodeEvent(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, e);
}

TEST(EventCodecTest, MinimalEventRoundTripsAndIsSmall) {
  Event e;
  e.tenant = "tenant-1";
  e.user_id = "user-1";
  e.type = EventType::kUninstall;
  e.ts = 946684800LL * 1000000;
  std::string bytes = EncodeEvent(e);
  // version, type, flags, 8-byte varint ts, a 1-byte length before each string,
  // the extension flags
  EXPECT_EQ(bytes.size(), 14 + e.tenant.size() + e.user_id.size());
  EXPECT_EQ(DecodeEvent(bytes).value(), e);
}

TEST(EventCodecTest, DecodeReusesTheEventAndClearsAbsentFields) {
  Event target = Full();
  Event small;
  small.tenant = "tenant-2";
  small.user_id = "user-2";
  small.ts = 1767571200000000;
  ASSERT_TRUE(DecodeEvent(EncodeEvent(small), &target).ok());
  EXPECT_EQ(target, small);
}

TEST(EventCodecTest, EveryTruncationIsCorruption) {
  const std::string bytes = EncodeEvent(Full());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    Result<Event> r = DecodeEvent(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), Code::kCorruption);
  }
  EXPECT_EQ(DecodeEvent(bytes + "x").status().message(), "undecodable event: trailing bytes");
}

TEST(EventCodecTest, UnknownVersionAndTypeAreCorruption) {
  std::string bytes = EncodeEvent(Full());
  bytes[0] = 9;
  EXPECT_EQ(DecodeEvent(bytes).status().message(), "undecodable event: unknown encoding version 9");
  bytes = EncodeEvent(Full());
  bytes[1] = static_cast<char>(kEventTypeCount);
  EXPECT_EQ(DecodeEvent(bytes).status().message(), "undecodable event: unknown event type");
}

TEST(EventCodecTest, FlippedBytesNeverCrash) {
  const std::string bytes = EncodeEvent(Full());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string copy = bytes;
      copy[i] = static_cast<char>(copy[i] ^ (1 << bit));
      (void)DecodeEvent(copy);  // any result, but no crash or sanitizer report
    }
  }
}

}  // namespace
}  // namespace herald::stream
