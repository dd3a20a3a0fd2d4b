// Well-formed packets: byte-exact encodings from the standard's examples, round trips
// of every packet type, remaining-length boundaries, streaming and size limits.
#include "mqtt/codec.h"

#include <gtest/gtest.h>

#include <vector>

#include "mqtt/tests/wire_bytes.h"

namespace herald::mqtt {
namespace {

using testing::Bytes;
using testing::ConnectHeader;
using testing::EncodeToString;
using testing::Frame;
using testing::Str;

// Decodes `bytes` and expects exactly one packet spanning all of them.
Packet DecodeOne(std::string_view bytes) {
  DecodeResult r = Decode(bytes);
  EXPECT_EQ(r.outcome, DecodeOutcome::kPacket) << r.error.reason;
  EXPECT_EQ(r.consumed, bytes.size());
  return r.packet;
}

// One of every packet type, with every optional part present somewhere.
std::vector<Packet> EveryPacketType() {
  Connect full;
  full.client_id = "device-42";
  full.clean_session = false;
  full.keep_alive = 300;
  full.will = Will{"u/42/status", std::string("off\0line", 8), QoS::kExactlyOnce, true};
  full.username = "user";
  full.password = std::string("\xff\x00pw", 4);
  return {full,
          Connect{},
          Connack{true, ConnackCode::kAccepted},
          Connack{false, ConnackCode::kNotAuthorized},
          Publish{false, QoS::kAtMostOnce, true, 0, "a/b", "hello"},
          Publish{true, QoS::kAtLeastOnce, false, 7, "u/42", ""},
          Publish{false, QoS::kExactlyOnce, false, 65535, "$SYS/x", std::string_view("\0\1", 2)},
          Puback{1},
          Pubrec{2},
          Pubrel{3},
          Pubcomp{4},
          Subscribe{10, {{"a/+", QoS::kAtMostOnce}, {"#", QoS::kExactlyOnce}}},
          Suback{10, {SubackCode::kGrantedQoS0, SubackCode::kFailure}},
          Unsubscribe{11, {"a/+", "sport/#"}},
          Unsuback{11},
          Pingreq{},
          Pingresp{},
          Disconnect{}};
}

TEST(CodecTest, EveryPacketTypeRoundTrips) {
  std::vector<bool> seen(15, false);
  for (const Packet& p : EveryPacketType()) {
    std::string wire = EncodeToString(p);
    EXPECT_EQ(DecodeOne(wire), p) << PacketTypeName(TypeOf(p));
    seen[static_cast<size_t>(TypeOf(p))] = true;
  }
  for (int t = 1; t <= 14; ++t) EXPECT_TRUE(seen[t]) << "no round trip for type " << t;
}

TEST(CodecTest, EncodeAppendsToExistingBuffer) {
  std::string out = "prefix";
  Encode(Pingreq{}, &out);
  Encode(Puback{0x0102}, &out);
  EXPECT_EQ(out, "prefix" + Bytes({0xC0, 0x00, 0x40, 0x02, 0x01, 0x02}));
}

TEST(CodecTest, ConnectMatchesHandWrittenBytes) {
  Connect c;
  c.client_id = "a";
  c.keep_alive = 60;
  std::string expected = Frame(0x10, ConnectHeader(0x02, 60) + Str("a"));
  EXPECT_EQ(expected.substr(0, 2), Bytes({0x10, 0x0D}));
  EXPECT_EQ(EncodeToString(c), expected);
}

// Section 3.1.2.10, figure 3.6: flags 0xCE, keep alive 10.
TEST(CodecTest, ConnectVariableHeaderMatchesSpecExample) {
  Connect c;
  c.client_id = "c";
  c.keep_alive = 10;
  c.will = Will{"w", "bye", QoS::kAtLeastOnce, false};
  c.username = "u";
  c.password = "p";
  std::string wire = EncodeToString(c);
  EXPECT_EQ(wire.substr(2, 10), Bytes({0, 4, 'M', 'Q', 'T', 'T', 4, 0xCE, 0, 10}));
  EXPECT_EQ(wire.substr(12), Str("c") + Str("w") + Str("bye") + Str("u") + Str("p"));
}

TEST(CodecTest, ConnackMatchesHandWrittenBytes) {
  EXPECT_EQ(EncodeToString(Connack{}), Bytes({0x20, 0x02, 0x00, 0x00}));
  EXPECT_EQ(EncodeToString(Connack{true, ConnackCode::kAccepted}), Bytes({0x20, 2, 1, 0}));
  EXPECT_EQ(EncodeToString(Connack{false, ConnackCode::kBadUsernameOrPassword}),
            Bytes({0x20, 2, 0, 4}));
}

// Section 3.3.2.3, figure 3.11: topic "a/b", packet id 10.
TEST(CodecTest, PublishMatchesSpecExample) {
  Publish p{false, QoS::kAtLeastOnce, false, 10, "a/b", "hi"};
  EXPECT_EQ(EncodeToString(p),
            Bytes({0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'}));
  Publish q{true, QoS::kExactlyOnce, true, 10, "a/b", ""};
  EXPECT_EQ(EncodeToString(q), Bytes({0x3D, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A}));
  Publish zero{false, QoS::kAtMostOnce, false, 0, "a/b", "x"};
  EXPECT_EQ(EncodeToString(zero), Bytes({0x30, 0x06, 0x00, 0x03, 'a', '/', 'b', 'x'}));
}

TEST(CodecTest, AcknowledgementsMatchHandWrittenBytes) {
  EXPECT_EQ(EncodeToString(Puback{10}), Bytes({0x40, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(EncodeToString(Pubrec{10}), Bytes({0x50, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(EncodeToString(Pubrel{10}), Bytes({0x62, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(EncodeToString(Pubcomp{0xABCD}), Bytes({0x70, 0x02, 0xAB, 0xCD}));
  EXPECT_EQ(EncodeToString(Unsuback{10}), Bytes({0xB0, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(EncodeToString(Pingreq{}), Bytes({0xC0, 0x00}));
  EXPECT_EQ(EncodeToString(Pingresp{}), Bytes({0xD0, 0x00}));
  EXPECT_EQ(EncodeToString(Disconnect{}), Bytes({0xE0, 0x00}));
}

// Section 3.8.3.1, figure 3.22: "a/b" at QoS 1 and "c/d" at QoS 2, packet id 10.
TEST(CodecTest, SubscribeMatchesSpecExample) {
  std::string wire = Bytes({0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00,
                            0x03, 'c', '/', 'd', 0x02});
  Subscribe s{10, {{"a/b", QoS::kAtLeastOnce}, {"c/d", QoS::kExactlyOnce}}};
  EXPECT_EQ(EncodeToString(s), wire);
  EXPECT_EQ(DecodeOne(wire), Packet(s));
}

// Section 3.9.3.1, figure 3.26: one return code of each kind.
TEST(CodecTest, SubackMatchesSpecExample) {
  std::string wire = Bytes({0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80});
  Suback s{10,
           {SubackCode::kGrantedQoS0, SubackCode::kGrantedQoS1, SubackCode::kGrantedQoS2,
            SubackCode::kFailure}};
  EXPECT_EQ(EncodeToString(s), wire);
  EXPECT_EQ(DecodeOne(wire), Packet(s));
}

// Section 3.10.3.1, figure 3.28.
TEST(CodecTest, UnsubscribeMatchesSpecExample) {
  std::string wire = Bytes({0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x03, 'c',
                            '/', 'd'});
  Unsubscribe u{10, {"a/b", "c/d"}};
  EXPECT_EQ(EncodeToString(u), wire);
  EXPECT_EQ(DecodeOne(wire), Packet(u));
}

TEST(CodecTest, DecodedPublishViewsPointIntoInput) {
  std::string wire = EncodeToString(Publish{false, QoS::kAtLeastOnce, false, 5, "t/1", "body"});
  Publish p = std::get<Publish>(DecodeOne(wire));
  EXPECT_EQ(p.topic.data(), wire.data() + 4);
  EXPECT_EQ(p.payload.data(), wire.data() + 9);
  EXPECT_EQ(p.payload, "body");
}

TEST(CodecTest, OwnedPublishOutlivesInputBuffer) {
  OwnedPublish owned;
  {
    std::string wire = EncodeToString(Publish{false, QoS::kExactlyOnce, true, 9, "t", "data"});
    owned = OwnedPublish::CopyOf(std::get<Publish>(DecodeOne(wire)));
    wire.assign(wire.size(), 'X');
  }
  EXPECT_EQ(owned.view(), (Publish{false, QoS::kExactlyOnce, true, 9, "t", "data"}));
  EXPECT_EQ(EncodedSize(owned.view()), EncodeToString(owned.view()).size());
}

// A PUBLISH to topic "t" at QoS 0 has remaining length 3 + payload size.
std::string PublishWithRemainingLength(size_t length) {
  std::string payload(length - 3, 'p');
  return EncodeToString(Publish{false, QoS::kAtMostOnce, false, 0, "t", payload});
}

TEST(CodecTest, RemainingLengthBoundariesEncodeAndDecode) {
  struct Case {
    size_t length;
    std::string header;
  };
  const Case cases[] = {
      {127, Bytes({0x30, 0x7F})},
      {128, Bytes({0x30, 0x80, 0x01})},
      {16'383, Bytes({0x30, 0xFF, 0x7F})},
      {16'384, Bytes({0x30, 0x80, 0x80, 0x01})},
      {2'097'151, Bytes({0x30, 0xFF, 0xFF, 0x7F})},
      {2'097'152, Bytes({0x30, 0x80, 0x80, 0x80, 0x01})},
  };
  for (const Case& c : cases) {
    std::string wire = PublishWithRemainingLength(c.length);
    ASSERT_EQ(wire.size(), c.header.size() + c.length);
    EXPECT_EQ(wire.substr(0, c.header.size()), c.header) << c.length;
    Publish p = std::get<Publish>(DecodeOne(wire));
    EXPECT_EQ(p.payload.size(), c.length - 3);
  }
  EXPECT_EQ(EncodeToString(Pingreq{}), Bytes({0xC0, 0x00}));  // length 0
}

TEST(CodecTest, MaximumRemainingLengthIsRecognisedFromHeaderAlone) {
  DecodeResult r = Decode(Bytes({0x30, 0xFF, 0xFF, 0xFF, 0x7F}));
  EXPECT_EQ(r.outcome, DecodeOutcome::kNeedMore);
  EXPECT_EQ(r.frame_size, 5 + kMaxRemainingLength);
}

TEST(CodecTest, NonMinimalRemainingLengthIsAccepted) {
  DecodeResult r = Decode(Bytes({0xC0, 0x80, 0x00}));
  ASSERT_EQ(r.outcome, DecodeOutcome::kPacket);
  EXPECT_EQ(r.consumed, 3u);
  EXPECT_EQ(r.packet, Packet(Pingreq{}));
}

TEST(CodecTest, EmptyInputNeedsMore) {
  DecodeResult r = Decode("");
  EXPECT_EQ(r.outcome, DecodeOutcome::kNeedMore);
  EXPECT_EQ(r.frame_size, 0u);
}

TEST(CodecTest, EveryPrefixOfAPacketNeedsMore) {
  std::string wire = PublishWithRemainingLength(200);  // two-byte varint
  for (size_t n = 0; n < wire.size(); ++n) {
    DecodeResult r = Decode(std::string_view(wire).substr(0, n));
    ASSERT_EQ(r.outcome, DecodeOutcome::kNeedMore) << n;
    EXPECT_EQ(r.frame_size, n < 3 ? 0 : wire.size()) << n;
  }
}

TEST(CodecTest, StreamFedOneByteAtATimeYieldsEveryPacket) {
  std::string stream;
  for (const Packet& p : EveryPacketType()) Encode(p, &stream);
  std::string buffer;
  std::string reencoded;
  for (char byte : stream) {
    buffer.push_back(byte);
    DecodeResult r = Decode(buffer);
    ASSERT_NE(r.outcome, DecodeOutcome::kError) << r.error.reason;
    if (r.outcome == DecodeOutcome::kNeedMore) continue;
    Encode(r.packet, &reencoded);  // before erase() invalidates a Publish's views
    buffer.erase(0, r.consumed);
  }
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(reencoded, stream);
}

TEST(CodecTest, ManyPacketsInOneBufferDecodeInOrder) {
  std::vector<Packet> packets = EveryPacketType();
  std::string stream;
  for (const Packet& p : packets) Encode(p, &stream);
  std::string_view rest = stream;
  for (const Packet& expected : packets) {
    DecodeResult r = Decode(rest);
    ASSERT_EQ(r.outcome, DecodeOutcome::kPacket) << r.error.reason;
    EXPECT_EQ(r.packet, expected);
    rest.remove_prefix(r.consumed);
  }
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(Decode(rest).outcome, DecodeOutcome::kNeedMore);
}

TEST(CodecTest, OversizedPacketRejectedFromFixedHeaderAlone) {
  DecodeLimits limits{100};
  std::string header = Bytes({0x30, 0xC8, 0x01});  // declares 200 bytes, none present
  EXPECT_EQ(Decode(header.substr(0, 1), limits).outcome, DecodeOutcome::kNeedMore);
  EXPECT_EQ(Decode(header.substr(0, 2), limits).outcome, DecodeOutcome::kNeedMore);
  DecodeResult r = Decode(header, limits);
  ASSERT_EQ(r.outcome, DecodeOutcome::kError);
  EXPECT_EQ(r.error.kind, DecodeErrorKind::kTooLarge);
  EXPECT_EQ(r.error.ToStatus().code(), Code::kResourceExhausted);
}

TEST(CodecTest, PacketExactlyAtSizeLimitIsAccepted) {
  std::string wire = PublishWithRemainingLength(98);  // 2 header bytes: 100 in all
  EXPECT_EQ(Decode(wire, DecodeLimits{100}).outcome, DecodeOutcome::kPacket);
  DecodeResult r = Decode(wire, DecodeLimits{99});
  ASSERT_EQ(r.outcome, DecodeOutcome::kError);
  EXPECT_EQ(r.error.kind, DecodeErrorKind::kTooLarge);
}

TEST(CodecTest, EncodedSizeMatchesEncoding) {
  for (size_t size : {0, 1, 120, 121, 200, 20'000}) {
    std::string payload(size, 'x');
    Publish p{false, QoS::kAtLeastOnce, false, 1, "a/b", payload};
    EXPECT_EQ(EncodedSize(p), EncodeToString(p).size()) << size;
  }
}

TEST(CodecTest, PacketTypeNamesAndDirections) {
  EXPECT_EQ(PacketTypeName(PacketType::kUnsubscribe), "UNSUBSCRIBE");
  EXPECT_EQ(PacketTypeName(TypeOf(Packet(Disconnect{}))), "DISCONNECT");
  EXPECT_TRUE(SentByClient(PacketType::kConnect));
  EXPECT_TRUE(SentByClient(PacketType::kPuback));
  EXPECT_FALSE(SentByClient(PacketType::kConnack));
  EXPECT_FALSE(SentByClient(PacketType::kSuback));
  EXPECT_FALSE(SentByClient(PacketType::kPingresp));
}

TEST(CodecTest, EncodingPublishWithPacketIdZeroAborts) {
  std::string out;
  Publish p{false, QoS::kAtLeastOnce, false, 0, "t", ""};
  EXPECT_DEATH(Encode(p, &out), "packet id 0");
  Connect c;
  c.password = "secret";
  EXPECT_DEATH(Encode(c, &out), "password without username");
}

}  // namespace
}  // namespace herald::mqtt
