// Golden bytes of the broker's persisted records (persist_format.h). A format
// change fails here first: keep decoding what older versions wrote.
#include "mqtt/persist_format.h"

#include <gtest/gtest.h>

namespace herald::mqtt {
namespace {

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

Message Push(bool ids) {
  Message m;
  m.topic = "t/u/1";
  m.payload = "{}";
  m.qos = 1;
  m.expires_at = 0x0102030405060708;
  m.message_id = "m9";
  if (ids) {
    m.account_id = "a1";
    m.campaign_id = "c";
  }
  return m;
}

TEST(PersistFormatTest, MessageRecordWithAndWithoutIds) {
  // qos | flags | expires_at LE | topic len LE | topic | mid len | mid | payload
  const char* plain = "01000807060504030201" "0500" "742f752f31" "02" "6d39" "7b7d";
  EXPECT_EQ(Hex(EncodeMessageRecord(Push(false), 1)), plain);
  // flag bit 1: account and campaign after the message id
  const char* ids = "01020807060504030201" "0500" "742f752f31" "02" "6d39" "026131" "0163" "7b7d";
  EXPECT_EQ(Hex(EncodeMessageRecord(Push(true), 1)), ids);
  for (const char* golden : {plain, ids}) {
    Message m;
    std::uint8_t qos = 0;
    ASSERT_TRUE(DecodeMessageRecord(Unhex(golden), &m, &qos));
    EXPECT_EQ(qos, 1);
    EXPECT_EQ(m.topic, "t/u/1");
    EXPECT_EQ(m.message_id, "m9");
    EXPECT_EQ(m.payload, "{}");
    EXPECT_EQ(m.expires_at, 0x0102030405060708);
  }
  Message m;
  std::uint8_t qos = 0;
  ASSERT_TRUE(DecodeMessageRecord(Unhex(ids), &m, &qos));
  EXPECT_EQ(m.account_id, "a1");
  EXPECT_EQ(m.campaign_id, "c");
  // Truncations and a QoS of 0 are not records.
  std::string whole = Unhex(ids);
  for (size_t n = 0; n < 20; ++n) EXPECT_FALSE(DecodeMessageRecord(whole.substr(0, n), &m, &qos)) << n;
  whole[0] = 0;
  EXPECT_FALSE(DecodeMessageRecord(whole, &m, &qos));
}

TEST(PersistFormatTest, InflightMarkAndAwaitingRel) {
  EXPECT_EQ(Hex(InflightKey("k", 258)), "6b00" "0000000000000102" "01");
  EXPECT_EQ(Hex(EncodeInflightRecord(0x1234, true)), "341201");
  std::uint16_t id = 0;
  bool pubrec = false;
  ASSERT_TRUE(DecodeInflightRecord(Unhex("341200"), &id, &pubrec));
  EXPECT_EQ((id, pubrec), (0x1234, false));
  EXPECT_FALSE(DecodeInflightRecord(Unhex("000000"), &id, &pubrec));  // packet id 0
  SessionRecord r{"c1", "", "", "", "", {}, {7, 9}};
  EXPECT_EQ(EncodeSessionRecord(r),
            R"({"awaiting_rel":[7,9],"client_id":"c1","device_id":"","mount":"","subs":[],"tenant":"","user_id":""})");
  EXPECT_EQ(DecodeSessionRecord(EncodeSessionRecord(r)).value().awaiting_rel,
            (std::vector<std::uint16_t>{7, 9}));
  EXPECT_FALSE(DecodeSessionRecord(R"({"awaiting_rel":[0]})").ok());
}

TEST(PersistFormatTest, MessageKeyAndSessionRecord) {
  EXPECT_EQ(Hex(MessageKey("k", 258)), "6b00" "0000000000000102");
  SessionRecord r{"c1", "t/", "t", "u1", "d1", {{"t/u/u1", 1}}};
  const char* json =
      R"({"client_id":"c1","device_id":"d1","mount":"t/","subs":[["t/u/u1",1]],"tenant":"t","user_id":"u1"})";
  EXPECT_EQ(EncodeSessionRecord(r), json);
  auto back = DecodeSessionRecord(json).value();
  EXPECT_EQ(back.client_id, "c1");
  EXPECT_EQ(back.subs, r.subs);
  for (const char* bad : {"[]", "{\"client_id\":5}", "{\"subs\":[[\"x\",3]]}", "{\"subs\":[1]}", "not json"}) {
    EXPECT_EQ(DecodeSessionRecord(bad).status().code(), Code::kCorruption) << bad;
  }
}

}  // namespace
}  // namespace herald::mqtt
