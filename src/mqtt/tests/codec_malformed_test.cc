// Malformed packets and protocol violations: one test per normative statement the
// decoder enforces, plus the CONNECT refusals that earn a CONNACK.
#include <gtest/gtest.h>

#include "mqtt/codec.h"
#include "mqtt/tests/wire_bytes.h"

namespace herald::mqtt {
namespace {

using testing::Bytes;
using testing::ConnectHeader;
using testing::Frame;
using testing::Str;

// Expects `bytes` to decode to a kMalformed error whose reason mentions `rule`.
void ExpectMalformed(std::string_view bytes, std::string_view rule) {
  DecodeResult r = Decode(bytes);
  ASSERT_EQ(r.outcome, DecodeOutcome::kError) << "accepted; expected " << rule;
  EXPECT_EQ(r.error.kind, DecodeErrorKind::kMalformed) << r.error.reason;
  EXPECT_NE(r.error.reason.find(rule), std::string_view::npos) << r.error.reason;
  EXPECT_EQ(r.error.ToStatus().code(), Code::kInvalidArgument);
}

void ExpectRefused(std::string_view bytes, ConnackCode code) {
  DecodeResult r = Decode(bytes);
  ASSERT_EQ(r.outcome, DecodeOutcome::kError);
  EXPECT_EQ(r.error.kind, DecodeErrorKind::kConnectRefused) << r.error.reason;
  EXPECT_EQ(r.error.connack, code);
  EXPECT_EQ(r.error.ToStatus().code(), Code::kFailedPrecondition);
}

void ExpectAccepted(std::string_view bytes) {
  DecodeResult r = Decode(bytes);
  EXPECT_EQ(r.outcome, DecodeOutcome::kPacket) << r.error.reason;
}

TEST(CodecMalformedTest, ReservedPacketTypesAreRejectedFromFirstByte) {
  ExpectMalformed(Bytes({0x00}), "MQTT-2.2.1");
  ExpectMalformed(Bytes({0xF0}), "MQTT-2.2.1");
}

TEST(CodecMalformedTest, EveryWrongFixedHeaderFlagIsRejectedFromFirstByte) {
  for (int type = 1; type <= 14; ++type) {
    if (type == 3) continue;  // PUBLISH flags carry DUP, QoS and RETAIN
    bool needs_0010 = type == 6 || type == 8 || type == 10;
    for (int flags = 0; flags < 16; ++flags) {
      if (flags == (needs_0010 ? 0b0010 : 0)) continue;
      SCOPED_TRACE(::testing::Message() << "type " << type << " flags " << flags);
      ExpectMalformed(Bytes({type << 4 | flags}), "MQTT-2.2.2-2");
    }
  }
}

TEST(CodecMalformedTest, FifthRemainingLengthByteIsMalformed) {
  ExpectMalformed(Bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}), "MQTT-2.2.3");
  // Known from the 4th byte's continuation bit, before any 5th byte arrives.
  ExpectMalformed(Bytes({0x30, 0x80, 0x80, 0x80, 0x80}), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, PublishQoS3IsMalformed) {
  ExpectMalformed(Frame(0x36, Str("a") + Bytes({0, 1})), "MQTT-3.3.1-4");
}

TEST(CodecMalformedTest, PublishDupAtQoS0IsMalformed) {
  ExpectMalformed(Frame(0x38, Str("a")), "MQTT-3.3.1-2");
  ExpectAccepted(Frame(0x3A, Str("a") + Bytes({0, 1})));  // DUP at QoS 1 is fine
}

TEST(CodecMalformedTest, PublishTopicWithWildcardIsMalformed) {
  ExpectMalformed(Frame(0x30, Str("a/+")), "MQTT-3.3.2-2");
  ExpectMalformed(Frame(0x30, Str("a/#")), "MQTT-3.3.2-2");
  ExpectMalformed(Frame(0x30, Str("a+b")), "MQTT-3.3.2-2");
}

TEST(CodecMalformedTest, PublishEmptyTopicIsMalformed) {
  ExpectMalformed(Frame(0x30, Str("") + "payload"), "MQTT-4.7.3-1");
}

TEST(CodecMalformedTest, PublishTopicWithBadUtf8IsMalformed) {
  ExpectMalformed(Frame(0x30, Str("a\xC0\x80")), "MQTT-1.5.3");
  ExpectMalformed(Frame(0x30, Str(std::string_view("a\0b", 3))), "MQTT-1.5.3");
  ExpectMalformed(Frame(0x30, Str("\xED\xA0\x80")), "MQTT-1.5.3");
}

TEST(CodecMalformedTest, PublishTruncatedFieldsAreMalformed) {
  ExpectMalformed(Frame(0x30, Bytes({0x00})), "MQTT-2.2.3");
  ExpectMalformed(Frame(0x30, Bytes({0x00, 0x05}) + "abc"), "MQTT-2.2.3");
  ExpectMalformed(Frame(0x32, Str("a") + Bytes({0x01})), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, ZeroPacketIdentifierIsMalformedEverywhere) {
  ExpectMalformed(Frame(0x32, Str("a") + Bytes({0, 0})), "MQTT-2.3.1-1");
  ExpectMalformed(Frame(0x34, Str("a") + Bytes({0, 0})), "MQTT-2.3.1-1");
  for (int byte0 : {0x40, 0x50, 0x62, 0x70, 0xB0}) {
    ExpectMalformed(Frame(byte0, Bytes({0, 0})), "MQTT-2.3.1-1");
  }
  ExpectMalformed(Frame(0x82, Bytes({0, 0}) + Str("a") + Bytes({0})), "MQTT-2.3.1-1");
  ExpectMalformed(Frame(0x90, Bytes({0, 0, 0})), "MQTT-2.3.1-1");
  ExpectMalformed(Frame(0xA2, Bytes({0, 0}) + Str("a")), "MQTT-2.3.1-1");
}

TEST(CodecMalformedTest, AcknowledgementLengthOtherThanTwoIsMalformed) {
  for (int byte0 : {0x40, 0x50, 0x62, 0x70, 0xB0}) {
    ExpectMalformed(Frame(byte0, Bytes({0, 1, 0})), "MQTT-2.2.3");  // trailing garbage
    ExpectMalformed(Frame(byte0, Bytes({1})), "MQTT-2.2.3");
    ExpectMalformed(Frame(byte0, ""), "MQTT-2.2.3");
  }
}

TEST(CodecMalformedTest, PingAndDisconnectWithBodyAreMalformed) {
  for (int byte0 : {0xC0, 0xD0, 0xE0}) ExpectMalformed(Frame(byte0, "x"), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, ConnectReservedFlagIsMalformed) {
  ExpectMalformed(Frame(0x10, ConnectHeader(0x03) + Str("c")), "MQTT-3.1.2-3");
}

TEST(CodecMalformedTest, ConnectWillQoSOrRetainWithoutWillFlagIsMalformed) {
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02 | 0x08) + Str("c")), "MQTT-3.1.2-11");
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02 | 0x10) + Str("c")), "MQTT-3.1.2-11");
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02 | 0x20) + Str("c")), "MQTT-3.1.2-11");
}

TEST(CodecMalformedTest, ConnectWillQoS3IsMalformed) {
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02 | 0x04 | 0x18) + Str("c") + Str("w") + Str("m")),
                  "MQTT-3.1.2-14");
}

TEST(CodecMalformedTest, ConnectPasswordWithoutUsernameIsMalformed) {
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02 | 0x40) + Str("c") + Str("pw")), "MQTT-3.1.2-22");
}

TEST(CodecMalformedTest, ConnectWrongProtocolNameIsMalformed) {
  ExpectMalformed(Frame(0x10, Str("MQTX") + Bytes({4, 2, 0, 60}) + Str("c")), "MQTT-3.1.2-1");
  ExpectMalformed(Frame(0x10, Str("mqtt") + Bytes({4, 2, 0, 60}) + Str("c")), "MQTT-3.1.2-1");
}

TEST(CodecMalformedTest, ConnectUnsupportedLevelIsRefusedWith0x01) {
  for (int level : {0, 3, 5, 255}) {
    ExpectRefused(Frame(0x10, Str("MQTT") + Bytes({level, 2, 0, 60}) + Str("c")),
                  ConnackCode::kUnacceptableProtocolVersion);
  }
}

TEST(CodecMalformedTest, ConnectMqtt31IsRefusedWith0x01) {
  ExpectRefused(Frame(0x10, Str("MQIsdp") + Bytes({3, 2, 0, 60}) + Str("c")),
                ConnackCode::kUnacceptableProtocolVersion);
}

TEST(CodecMalformedTest, ConnectEmptyClientIdWithoutCleanSessionIsRefusedWith0x02) {
  ExpectRefused(Frame(0x10, ConnectHeader(0x00) + Str("")), ConnackCode::kIdentifierRejected);
  ExpectAccepted(Frame(0x10, ConnectHeader(0x02) + Str("")));
}

TEST(CodecMalformedTest, ConnectMalformedPayloadWinsOverRefusal) {
  // Empty id without clean session, but also trailing garbage: no CONNACK is due.
  ExpectMalformed(Frame(0x10, ConnectHeader(0x00) + Str("") + "x"), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, ConnectBadUtf8StringsAreMalformed) {
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02) + Str("\xFF")), "MQTT-1.5.3");
  ExpectMalformed(Frame(0x10, ConnectHeader(0x82) + Str("c") + Str("\xC3")), "MQTT-1.5.3");
  ExpectMalformed(Frame(0x10, ConnectHeader(0x06) + Str("c") + Str("w\xED\xBF\xBF") + Str("m")),
                  "MQTT-1.5.3");
}

TEST(CodecMalformedTest, ConnectBinaryFieldsMayHoldAnyBytes) {
  std::string binary("\xFF\x00\xC0\x80", 4);
  ExpectAccepted(Frame(0x10, ConnectHeader(0xC6) + Str("c") + Str("w") + Str(binary) + Str("u") +
                                 Str(binary)));
}

TEST(CodecMalformedTest, ConnectWillTopicWithWildcardIsMalformed) {
  ExpectMalformed(Frame(0x10, ConnectHeader(0x06) + Str("c") + Str("w/#") + Str("m")),
                  "MQTT-3.1.3-10");
}

TEST(CodecMalformedTest, ConnectTruncatedOrTrailingBytesAreMalformed) {
  ExpectMalformed(Frame(0x10, Bytes({0, 4}) + "MQ"), "MQTT-2.2.3");
  ExpectMalformed(Frame(0x10, Str("MQTT")), "MQTT-2.2.3");
  ExpectMalformed(Frame(0x10, Str("MQTT") + Bytes({4, 2, 0})), "MQTT-2.2.3");
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02)), "MQTT-2.2.3");
  ExpectMalformed(Frame(0x10, ConnectHeader(0x82) + Str("c")), "MQTT-2.2.3");  // no username
  ExpectMalformed(Frame(0x10, ConnectHeader(0x06) + Str("c") + Str("w")), "MQTT-2.2.3");
  ExpectMalformed(Frame(0x10, ConnectHeader(0x02) + Str("c") + "\x01"), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, ConnackViolationsAreMalformed) {
  ExpectMalformed(Frame(0x20, Bytes({0x02, 0x00})), "MQTT-3.2.2");
  ExpectMalformed(Frame(0x20, Bytes({0x00, 0x06})), "MQTT-3.2.2.3");
  ExpectMalformed(Frame(0x20, Bytes({0x01, 0x05})), "MQTT-3.2.2-4");
  ExpectMalformed(Frame(0x20, Bytes({0x00, 0x00, 0x00})), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, SubscribeWithoutFiltersIsMalformed) {
  ExpectMalformed(Frame(0x82, Bytes({0, 1})), "MQTT-3.8.3-3");
}

TEST(CodecMalformedTest, SubscribeRequestedQoSReservedBitsOrQoS3AreMalformed) {
  for (int qos : {0x03, 0x04, 0x80, 0xFC, 0xFF}) {
    ExpectMalformed(Frame(0x82, Bytes({0, 1}) + Str("a") + Bytes({qos})), "MQTT-3.8.3-4");
  }
}

TEST(CodecMalformedTest, SubscribeInvalidFiltersAreMalformed) {
  for (std::string_view filter : {"", "a/#/b", "a#", "a/#b", "a/+b", "++", "#/"}) {
    ExpectMalformed(Frame(0x82, Bytes({0, 1}) + Str(filter) + Bytes({0})), "MQTT-4.7");
  }
  ExpectMalformed(Frame(0x82, Bytes({0, 1}) + Str("a\xC0") + Bytes({0})), "MQTT-1.5.3");
}

TEST(CodecMalformedTest, SubscribeTruncatedEntriesAreMalformed) {
  ExpectMalformed(Frame(0x82, Bytes({0, 1}) + Str("a")), "MQTT-2.2.3");  // no QoS byte
  ExpectMalformed(Frame(0x82, Bytes({0, 1}) + Str("a") + Bytes({0, 0})), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, SubackReservedOrMissingCodesAreMalformed) {
  ExpectMalformed(Frame(0x90, Bytes({0, 1})), "MQTT-3.9.3");
  for (int code : {0x03, 0x7F, 0x81, 0xFF}) {
    ExpectMalformed(Frame(0x90, Bytes({0, 1, 0, code})), "MQTT-3.9.3-2");
  }
}

TEST(CodecMalformedTest, UnsubscribeWithoutOrWithInvalidFiltersIsMalformed) {
  ExpectMalformed(Frame(0xA2, Bytes({0, 1})), "MQTT-3.10.3-2");
  ExpectMalformed(Frame(0xA2, Bytes({0, 1}) + Str("a/#/b")), "MQTT-4.7");
  ExpectMalformed(Frame(0xA2, Bytes({0, 1}) + Str("a") + Bytes({0})), "MQTT-2.2.3");
}

TEST(CodecMalformedTest, ErrorIsReportedOnlyOnceWholePacketArrived) {
  // The violation sits in the body: until the body is complete the answer is "more".
  std::string wire = Frame(0x30, Str("a/+"));
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_EQ(Decode(std::string_view(wire).substr(0, n)).outcome, DecodeOutcome::kNeedMore);
  }
  EXPECT_EQ(Decode(wire).outcome, DecodeOutcome::kError);
}

}  // namespace
}  // namespace herald::mqtt
