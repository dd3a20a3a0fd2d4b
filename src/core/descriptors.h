// The process's file descriptor budget.
//
// Linux gives a new descriptor the lowest free number, so a freshly accepted
// socket's number says how many descriptors are open, at no cost. Listeners for
// the API and for browsers use it to keep the last `reserve` descriptors for
// MQTT devices, so that a flood of idle HTTP or WebSocket connections cannot lock
// devices out.
#pragma once

#include <sys/resource.h>

#include <algorithm>

namespace herald {

// The soft limit on open descriptors (RLIMIT_NOFILE), or a large number when
// there is none.
inline long DescriptorLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 1L << 30;
  return static_cast<long>(r.rlim_cur);
}

// True when `fd`, just opened, leaves fewer than `reserve` descriptors free. The
// reserve is at most half of the limit, so that a low limit (1024) still leaves
// room for the API.
inline bool InDescriptorReserve(int fd, unsigned reserve, long limit = DescriptorLimit()) {
  long kept = std::min<long>(static_cast<long>(reserve), limit / 2);
  return fd >= 0 && static_cast<long>(fd) + kept >= limit;
}

}  // namespace herald
