// TcpPoller: plain-TCP MQTT connections on an epoll set of their own.
//
// Asio's reactor re-registers a descriptor (epoll_ctl) for every async_wait, which
// would cost a system call per message per connection. The poller instead keeps
// every TCP connection registered once, edge-triggered, in its own epoll set, and
// only that set's descriptor is watched through Asio: one epoll_ctl per loop turn,
// however many connections were ready. Lives on the gateway's loop.
#pragma once

#include <boost/asio/posix/stream_descriptor.hpp>

#include <memory>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "mqtt/link.h"

namespace herald::mqtt {

class TcpPoller {
 public:
  explicit TcpPoller(Loop& loop);
  ~TcpPoller();

  Status Init();
  // Takes ownership of a connected socket descriptor and starts serving it.
  void Adopt(int fd);
  // Closes every connection (used at shutdown).
  void CloseAll();

  // Called by links.
  void WantWrite(int fd, void* tag, bool on);
  // The link stopped reading with data left (its per-turn budget ran out); with an
  // edge-triggered set nothing would report it again, so it is revisited next turn.
  void ReadAgain(std::shared_ptr<LinkBase> link);
  void Forget(int fd);  // the link closed its descriptor; drop it after this turn

 private:
  void Arm();
  void Poll();
  void Drain();
  void RunReadAgain();

  Loop& loop_;
  int epfd_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> watch_;
  // Indexed by descriptor: descriptors are small, dense integers, and a slot costs
  // less than a hash node per connection.
  std::vector<std::shared_ptr<LinkBase>> links_;
  std::vector<std::shared_ptr<LinkBase>> graveyard_;  // closed this turn
  std::vector<std::shared_ptr<LinkBase>> read_again_;
  bool read_again_posted_ = false;
};

}  // namespace herald::mqtt
