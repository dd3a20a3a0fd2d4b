// On-disk format of the event log. This is a durable format: files written by one
// version of herald must stay readable by every later version.
//
// Layout:
//   <data_dir>/log/p<NNN>/<base_offset>.log
// One directory per partition (NNN is the partition id, zero-padded to 3 digits;
// the same partitions as core/partition.h). A partition is a sequence of segment
// files; each is named after the offset of its first record, zero-padded to 20
// digits so that names sort by offset. Offsets are per-partition record sequence
// numbers: dense, starting at 0, never reused. Only the last segment is written
// to; older ones are immutable until retention deletes them whole.
//
// A segment is a plain concatenation of records, with no file header or footer:
//
//   +---------+---------+-----------+------------------+-----------------+
//   | crc u32 | len u32 | offset u64| timestamp_us i64 | payload (len B) |
//   +---------+---------+-----------+------------------+-----------------+
//    0         4         8           16                 24
//
// All integers are little-endian. `crc` is the CRC-32C (log/crc32c.h) of the
// bytes from `len` to the end of the payload, i.e. of everything in the record but
// itself; `len` is the payload length in its low 31 bits, and its top bit
// (kContinuesFlag) is set on every record of an append but the last, so that
// recovery can tell a complete append from one cut short; `offset` repeats the record's offset so
// that a record is self-describing and a misplaced one is detected; `timestamp_us`
// is the append time in microseconds since the Unix epoch, as given to Append().
//
// Recovery: a record that is cut short at the end of the last segment, or whose
// CRC, length or offset is wrong there, is a torn tail (a write cut by a crash) and
// is truncated away on open, together with the records before it that belong to
// the same unfinished append: an append is in the log whole or not at all. The
// same defects anywhere else are corruption. Records written before the flag
// existed have it clear: each was an append of its own, which reads the same.
//
// Compatibility: the 24-byte header never changes meaning. A future version that
// needs more per-record fields must put them inside the payload or introduce a new
// segment file suffix (not ".log") that older versions ignore.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace herald::eventlog::format {

constexpr std::size_t kCrcOffset = 0;
constexpr std::size_t kLengthOffset = 4;
constexpr std::size_t kRecordOffsetOffset = 8;
constexpr std::size_t kTimestampOffset = 16;
constexpr std::size_t kHeaderSize = 24;
// Set in `len` on every record of an append except its last.
constexpr std::uint32_t kContinuesFlag = 0x80000000u;

// Largest payload a record may carry. A length above this in a file is corruption,
// which keeps a flipped bit in `len` from making a reader allocate gigabytes.
constexpr std::uint32_t kMaxPayloadBytes = 16u << 20;

// Segment file names: "%020llu.log".
constexpr std::string_view kSegmentSuffix = ".log";
constexpr std::size_t kSegmentNameDigits = 20;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the event log encodes integers by memcpy; port EncodeFixed for big-endian hosts");

inline void EncodeFixed32(char* p, std::uint32_t v) {
  std::memcpy(p, &v, sizeof v);
}
inline void EncodeFixed64(char* p, std::uint64_t v) {
  std::memcpy(p, &v, sizeof v);
}
inline std::uint32_t DecodeFixed32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint64_t DecodeFixed64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A record header as decoded from a file, before any validation.
struct RecordHeader {
  std::uint32_t crc = 0;
  std::uint32_t length = 0;  // without kContinuesFlag
  bool continues = false;    // more records of the same append follow
  std::uint64_t offset = 0;
  std::int64_t timestamp_us = 0;
};

inline RecordHeader DecodeHeader(const char* p) {
  RecordHeader h;
  h.crc = DecodeFixed32(p + kCrcOffset);
  const std::uint32_t len = DecodeFixed32(p + kLengthOffset);
  h.length = len & ~kContinuesFlag;
  h.continues = (len & kContinuesFlag) != 0;
  h.offset = DecodeFixed64(p + kRecordOffsetOffset);
  h.timestamp_us = static_cast<std::int64_t>(DecodeFixed64(p + kTimestampOffset));
  return h;
}

// Appends one encoded record to `out`. Requires payload.size() <= kMaxPayloadBytes.
// `continues`: another record of the same append follows this one.
void AppendRecord(std::string* out, std::uint64_t offset, std::int64_t timestamp_us,
                  std::string_view payload, bool continues = false);

// True when the CRC stored in the record starting at `record` (header and
// `length` payload bytes, all present in memory) matches its contents.
bool CrcMatches(const char* record, std::uint32_t length);

// "00000000000000001234.log"
std::string SegmentFileName(std::uint64_t base_offset);
// Parses a segment file name; false for any other name.
bool ParseSegmentFileName(std::string_view name, std::uint64_t* base_offset);

}  // namespace herald::eventlog::format
