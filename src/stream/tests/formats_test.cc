// Golden bytes of every record the stream module writes to the event log and the
// store. A change to any of these formats fails here first: give the format a new
// version and keep decoding the old one, then add its bytes below.
#include <cctz/time_zone.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "store/keys.h"
#include "stream/event_codec.h"
#include "stream/feature_store.h"
#include "stream/features.h"
#include "stream/layout.h"
#include "stream/outcome_windows.h"
#include "stream/tests/test_util.h"
#include "stream/timezones.h"

namespace herald::stream {
namespace {

using testing::At;

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::string Unhex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

Event FullEvent() {
  Event e;
  e.tenant = "t1";
  e.user_id = "u1";
  e.type = EventType::kRead;
  e.ts = At("2026-01-05T08:00:00Z");
  e.account_id = "a";
  e.message_id = "m";
  e.campaign_id = "c";
  e.attrs = R"({"item":"x","lat":1.5})";
  e.lat = 1.5;
  e.lng = -2.0;
  e.item = "x";
  e.tags = {"sports"};
  return e;
}

// Version 1 records (written before grid cells) still decode; version 2 adds
// the extension flags and the cell.
TEST(FormatsTest, EventRecordVersions1And2) {
  const char* v1 =
      "01028080d7a1eee7a306ff0274310275310161016d0163167b226974656d223a2278222c226c6174223a312e357d"
      "000000000000f83f00000000000000c00178010673706f727473";
  EXPECT_EQ(DecodeEvent(Unhex(v1)).value(), FullEvent());
  const char* v2 =
      "02028080d7a1eee7a306ff0274310275310161016d0163167b226974656d223a2278222c226c6174223a312e357d"
      "000000000000f83f00000000000000c00178010673706f72747300";
  EXPECT_EQ(Hex(EncodeEvent(FullEvent())), v2);
  EXPECT_EQ(DecodeEvent(Unhex(v2)).value(), FullEvent());
  Event minimal;
  minimal.tenant = "t";
  minimal.user_id = "u";
  minimal.type = EventType::kQueued;
  minimal.ts = At("2026-01-05T08:00:00Z");
  EXPECT_EQ(Hex(EncodeEvent(minimal)), "02118080d7a1eee7a30600017401" "7500");
  EXPECT_EQ(DecodeEvent(Unhex("01118080d7a1eee7a30600017401" "75")).value(), minimal);
  minimal.type = EventType::kLocation;
  minimal.cell = 0x35d2fc0000000000ULL;
  EXPECT_EQ(Hex(EncodeEvent(minimal)), "02078080d7a1eee7a30600017401" "75" "01" "0000000000fcd235");
  EXPECT_EQ(DecodeEvent(EncodeEvent(minimal)).value(), minimal);
  EXPECT_FALSE(DecodeEvent(Unhex("02118080d7a1eee7a30600017401" "7502")).ok());  // unknown extension
}

// The outcome-windows state writes the hour rows under 0xff tenant \0 class, and
// reads back both kinds of record.
TEST(FormatsTest, OutcomeWindowRecordsThroughAStore) {
  auto dir = std::filesystem::temp_directory_path() / ("formats-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto db = store::Db::Open(dir.string(), {}, {store::kStateFamily}).value();
  auto cf = db->Family(store::kStateFamily).value();
  OutcomeWindows w;
  Event sent;
  sent.tenant = "t";
  sent.user_id = "u";
  sent.type = EventType::kSent;
  sent.ts = At("2026-01-05T08:00:30Z");
  AppliedEvent e{sent, 5, 0, sent.ts, {&UtcTimeZone(), nullptr}, {}};
  w.OnEvent(e);
  store::WriteBatch b;
  CheckpointWriter cw(&b, cf, 5, store::StateTag::kWindows);
  w.Checkpoint(cw);
  std::vector<std::string> keys;
  for (const auto& op : b.ops()) keys.push_back(Hex(op.key));
  EXPECT_EQ(keys, (std::vector<std::string>{"00050374" "00616c6c00" "00" "0006479f721ae000",
                                            "00050374" "00616c6c00" "01" "0006479f721ae000",
                                            "000503ff" "7400616c6c"}));
  ASSERT_TRUE(db->Write(std::move(b)).ok());
  OutcomeWindows back;
  StateReader reader(db.get(), cf, 5, store::StateTag::kWindows);
  ASSERT_TRUE(back.Load(reader).ok());
  EXPECT_EQ(back.counts().ByLocalHour("t", "all")[8].sent, 1u);
  EXPECT_EQ(back.counts().Windows(kMicrosPerMinute, "t", 0).size(), 1u);
  db.reset();
  std::filesystem::remove_all(dir);
}

TEST(FormatsTest, UserUpdateRecord) {
  std::string out;
  EncodeUserUpdate({"t", "u1", std::string("Asia/Shanghai")}, &out);
  EXPECT_EQ(Hex(out), "81" "0174" "027531" "01" "0d417369612f5368616e67686169");
  UserUpdate back;
  ASSERT_TRUE(DecodeUserUpdate(out, &back).ok());
  EXPECT_EQ(back, (UserUpdate{"t", "u1", std::string("Asia/Shanghai")}));
  std::string none;
  EncodeUserUpdate({"t", "u1", std::nullopt}, &none);
  EXPECT_EQ(Hex(none), "81" "0174" "027531" "00");
  EXPECT_FALSE(DecodeUserUpdate(out.substr(0, out.size() - 1), &back).ok());
}

TEST(FormatsTest, IngestMarkRecord) {
  std::string out;
  EncodeIngestMark({"t1", "key", "ab"}, &out);
  EXPECT_EQ(Hex(out), "80" "027431" "036b6579" "026162");
  EXPECT_TRUE(IsIngestMark(out));
  EXPECT_FALSE(IsIngestMark(EncodeEvent(FullEvent())));
  IngestMark back;
  ASSERT_TRUE(DecodeIngestMark(out, &back).ok());
  EXPECT_EQ(back, (IngestMark{"t1", "key", "ab"}));
  EXPECT_FALSE(DecodeIngestMark(out + "x", &back).ok());
}

UserFeatures SomeFeatures() {
  UserFeatures f;
  const cctz::time_zone& tz = *FindTimeZone("Asia/Shanghai").value();
  Event open;
  open.tenant = "t";
  open.user_id = "u";
  open.type = EventType::kAppOpen;
  open.ts = At("2026-01-05T08:00:00+08:00");
  Apply(f, open, tz);
  Event sent = open;
  sent.type = EventType::kSent;
  sent.account_id = "golden-acct";
  sent.message_id = "m1";
  sent.ts += kMicrosPerMinute;
  Apply(f, sent, tz);
  Event online = open;
  online.type = EventType::kOnline;
  Apply(f, online, tz);
  return f;
}

TEST(FormatsTest, FeaturesRecordVersion2AndVersion1) {
  const char* golden =
      "028080eed797e6a306809c8a9198e6a3068080eed797e6a306809c8a9198e6a306008080eed797e6a3068080ee"
      "d797e6a3068080eed797e6a306160001000000000000010000000000000000000000010001001d0000bcfeebca06"
      "00000000000000eca0e4ef0b00000000000000000100000000000000000000000000000000000000808002000100"
      "0100000001880912ed4148c867a24a0101010001880912ed4148c8670b676f6c64656e2d61636374";
  std::string bytes = Serialize(SomeFeatures());
  EXPECT_EQ(Hex(bytes), golden);
  EXPECT_EQ(Deserialize(Unhex(golden)).value(), SomeFeatures());
  // Version 1: 17 event counts and no count before them.
  const char* v1 =
      "018080eed797e6a306809c8a9198e6a3068080eed797e6a306809c8a9198e6a306008080eed797e6a3068080ee"
      "d797e6a3068080eed797e6a306000100000000000001000000000000000001001d0000bcfeebca060000000000"
      "0000eca0e4ef0b00000000000000000100000000000000000000000000000000000000808002000100010000"
      "0001880912ed4148c867a24a0101010001880912ed4148c8670b676f6c64656e2d61636374";
  UserFeatures old = SomeFeatures();
  old.events_total[static_cast<int>(EventType::kOnline)] = 0;
  EXPECT_EQ(Deserialize(Unhex(v1)).value(), old);
}

TEST(FormatsTest, PartitionStateRecords) {
  EXPECT_EQ(Hex(store::UserKey(258, store::StateTag::kFeatures, "t", "u")), "0102017400" "75");
  EXPECT_EQ(Hex(store::PartitionKey(7, store::StateTag::kCheckpoint, "")), "000700");
  EXPECT_EQ(Hex(EncodeCheckpointRecord(300, At("2026-01-05T08:00:00Z"))),
            "01ac028080d7a1eee7a306");
  EXPECT_EQ(Hex(EncodeUserRecord("Asia/Shanghai")), "010d417369612f5368616e67686169");
  EXPECT_EQ(DecodeUserRecord(Unhex("010d417369612f5368616e67686169")).value(), "Asia/Shanghai");
  WindowRow row{"t", "all", kMicrosPerHour, At("2026-01-05T08:00:00Z"), {1, 2, 3, 300}};
  EXPECT_EQ(Hex(EncodeWindowKey(row)), "7400616c6c0001" "0006479f721ae000");
  EXPECT_EQ(Hex(EncodeCounts(row.counts)), "010203ac02");
  std::array<OutcomeCounts, 24> hours{};
  hours[1] = {1, 2, 3, 300};
  // 24 x (sent, delivered, opened, converted), varints: hour 1 is "010203ac02".
  EXPECT_EQ(Hex(EncodeHourCounts(hours)),
            "00000000" "010203ac02" + std::string(22 * 8, '0'));
  WindowRow back;
  ASSERT_TRUE(DecodeWindowKey(EncodeWindowKey(row), &back));
  EXPECT_EQ(back.start, row.start);
  EXPECT_EQ(back.size, row.size);
}

}  // namespace
}  // namespace herald::stream
