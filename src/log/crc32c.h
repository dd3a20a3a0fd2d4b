// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78).
//
// The checksum of every event-log record. It is the CRC of iSCSI, ext4 and
// leveldb, so `Value("123456789")` is 0xE3069283 and tools such as Python's
// crc32c package can check herald's files. On x86-64 with SSE4.2 it runs on the
// CPU's crc32 instruction (several GB/s); elsewhere on a slicing-by-8 table.
// Pure functions: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace herald::eventlog::crc32c {

// Returns the CRC-32C of `data` continued from `init`, the CRC of some preceding
// bytes A: Extend(Value(A), B) == Value(A + B).
std::uint32_t Extend(std::uint32_t init, const char* data, std::size_t n);

// Returns the CRC-32C of `data`.
inline std::uint32_t Value(const char* data, std::size_t n) {
  return Extend(0, data, n);
}
inline std::uint32_t Value(std::string_view data) {
  return Extend(0, data.data(), data.size());
}

// True when Extend() uses the SSE4.2 instruction (for tests and the benchmark).
bool IsAccelerated();

// The portable implementation, exposed so tests can check it against the
// accelerated one on machines that have both.
std::uint32_t ExtendPortable(std::uint32_t init, const char* data, std::size_t n);

}  // namespace herald::eventlog::crc32c
