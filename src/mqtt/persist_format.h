// The broker's persisted records: sessions, queued messages and retained
// messages.
//
// On-disk format (column families of the store; changing it needs a migration):
//   mqtt_sessions  key: session key (mount + client id)
//                  value: JSON {"client_id","mount","tenant","user_id","device_id",
//                                "subs":[[internal_filter, qos], ...],
//                                "awaiting_rel":[packet id, ...]}  (inbound QoS 2
//                                ids until PUBREL; absent when none)
//                  (compact, keys in alphabetical order)
//   mqtt_messages  key: session key, 0x00, seq (8 bytes big-endian)
//                  value: qos u8 | flags u8 (bit 0: retained copy, bit 1: ids) |
//                         expires_at i64 LE | topic_len u16 LE | topic |
//                         message_id_len u8 | message_id |
//                         [account_len u8 | account_id | campaign_len u8 | campaign_id]
//                           (only with flag bit 1) | payload
//                  Records written before bit 1 existed have it clear and decode
//                  unchanged.
//                  key: the message's key, 0x01 (an in-flight mark: the message
//                  was sent) value: packet_id u16 LE | flags u8 (bit 0: PUBREC
//                  received). On restart a marked message is in flight again:
//                  resent with DUP and its packet id, or its PUBREL resent.
//   mqtt_retained  key: internal topic   value: qos u8 | payload
// Only persistent sessions (clean session = 0) are stored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "mqtt/broker.h"

namespace herald::mqtt {

// mqtt_messages key of message `seq` of a session, and of its in-flight mark.
std::string MessageKey(const std::string& session_key, std::uint64_t seq);
std::string InflightKey(const std::string& session_key, std::uint64_t seq);
std::string EncodeInflightRecord(std::uint16_t packet_id, bool pubrec);
bool DecodeInflightRecord(std::string_view bytes, std::uint16_t* packet_id, bool* pubrec);
// The mqtt_messages value of `m` queued at `qos`.
std::string EncodeMessageRecord(const Message& m, std::uint8_t qos);
// False when `bytes` is not a message record (or its QoS is not 1 or 2).
bool DecodeMessageRecord(std::string_view bytes, Message* m, std::uint8_t* qos);
// DecodeMessageRecord's check alone, copying nothing.
bool ValidMessageRecord(std::string_view bytes);

struct SessionRecord {
  std::string client_id, mount, tenant, user_id, device_id;
  std::vector<std::pair<std::string, std::uint8_t>> subs;  // internal filter, granted QoS
  std::vector<std::uint16_t> awaiting_rel;                 // inbound QoS 2 ids
};
std::string EncodeSessionRecord(const SessionRecord& r);
// Corruption naming the field when `bytes` is not a session record.
Result<SessionRecord> DecodeSessionRecord(std::string_view bytes);

}  // namespace herald::mqtt
