// libFuzzer target for the MQTT codec. Decodes arbitrary bytes as a stream of
// packets and checks, for every packet decoded:
//   - the re-encoding decodes to an equal packet (round trip);
//   - the re-encoding equals the input packet except for a non-minimal remaining
//     length, since every other field has exactly one encoding;
//   - every strict prefix of the packet decodes to "need more", never an error;
//   - topic names and filters satisfy the topic module's own predicates.
// Seeds: tests/fuzz/mqtt_codec_corpus (tests/fuzz/make_mqtt_corpus.py).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mqtt/codec.h"
#include "mqtt/topic.h"

namespace herald::mqtt {
namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "codec_fuzz: property violated: %s\n", what);
  std::abort();
}

// Byte 0 and the body of one encoded packet, without the remaining-length varint.
std::string WithoutLength(std::string_view frame) {
  size_t i = 1;
  while (static_cast<uint8_t>(frame[i]) & 0x80) ++i;
  return std::string(frame.substr(0, 1)) + std::string(frame.substr(i + 1));
}

void CheckTopics(const Packet& p) {
  if (const auto* pub = std::get_if<Publish>(&p)) {
    Check(ValidTopicName(pub->topic), "decoded PUBLISH topic is a valid name");
    Check(TopicMatches(pub->topic, pub->topic), "topic name matches itself");
    Check(TopicMatches("#", pub->topic) == (pub->topic[0] != '$'), "'#' matches non-$ topics");
  } else if (const auto* sub = std::get_if<Subscribe>(&p)) {
    for (const Subscription& s : sub->subscriptions) {
      Check(ValidTopicFilter(s.filter), "decoded SUBSCRIBE filter is valid");
    }
  } else if (const auto* c = std::get_if<Connect>(&p); c && c->will) {
    Check(ValidTopicName(c->will->topic), "decoded will topic is a valid name");
  }
}

void CheckPacket(std::string_view frame, const Packet& packet, const DecodeLimits& limits) {
  std::string encoded;
  Encode(packet, &encoded);
  DecodeResult again = Decode(encoded, limits);
  Check(again.outcome == DecodeOutcome::kPacket, "re-encoding decodes");
  Check(again.consumed == encoded.size(), "re-encoding is consumed whole");
  Check(again.packet == packet, "re-encoding decodes to an equal packet");
  Check(WithoutLength(encoded) == WithoutLength(frame), "re-encoding matches the input bytes");
  if (const auto* pub = std::get_if<Publish>(&packet)) {
    Check(EncodedSize(*pub) == encoded.size(), "EncodedSize matches Encode");
  }
  for (size_t n : {size_t{0}, size_t{1}, frame.size() / 2, frame.size() - 1}) {
    if (n >= frame.size()) continue;
    Check(Decode(frame.substr(0, n), limits).outcome == DecodeOutcome::kNeedMore,
          "a strict prefix needs more");
  }
  CheckTopics(packet);
}

}  // namespace
}  // namespace herald::mqtt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace herald::mqtt;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const DecodeLimits limits{size_t{64} * 1024};
  while (!rest.empty()) {
    DecodeResult r = Decode(rest, limits);
    if (r.outcome != DecodeOutcome::kPacket) {
      Check(r.consumed == 0, "no bytes consumed without a packet");
      Check(r.outcome == DecodeOutcome::kError || r.frame_size == 0 || r.frame_size > rest.size(),
            "need-more frame size exceeds the input");
      Check(r.outcome == DecodeOutcome::kNeedMore || !r.error.reason.empty(),
            "errors have reasons");
      break;
    }
    Check(r.consumed > 0 && r.consumed <= rest.size(), "consumed stays within the input");
    CheckPacket(rest.substr(0, r.consumed), r.packet, limits);
    rest.remove_prefix(r.consumed);
  }
  return 0;
}
