// LinkBase: the buffering and close logic every transport shares, and the Loop
// they run on. Private to the mqtt module.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "mqtt/broker.h"

namespace herald::mqtt {

class LinkBase;

// One event loop: the io_context, what its connections report to (the broker, or
// a forwarder to the broker's loop), a read buffer shared by all its connections
// (an idle connection holds no read buffer of its own), and the list of
// connections with output to write at the end of this turn.
struct Loop {
  boost::asio::io_context ioc{1};
  LinkHandler* handler = nullptr;
  std::vector<char> read_buffer = std::vector<char>(256 << 10);
  std::vector<std::shared_ptr<LinkBase>> dirty;
  bool flush_posted = false;
  // Set while the TCP poller handles a batch of ready sockets; it flushes at the
  // end of the batch, so no separate flush needs to be posted.
  bool in_poll = false;
  // WebSocket and TLS connections open on all loops of the gateway (the TCP ones
  // are the poller's): the loops share one counter.
  std::shared_ptr<std::atomic<size_t>> browser_links = std::make_shared<std::atomic<size_t>>(0);

  // Writes every dirty connection's output. Posted once per turn.
  void FlushDirty();
};

// Output of a connection on another loop than the broker's, as the broker sees it:
// handed to the connection's loop (posted) and not yet written to the socket
// (unwritten, refreshed by that loop after each write).
struct OutputBacklog {
  std::atomic<size_t> posted{0}, unwritten{0};
};

class LinkBase : public Link, public std::enable_shared_from_this<LinkBase> {
 public:
  explicit LinkBase(Loop& loop) : loop_(loop) {}

  void Flush() override;
  void Close() override;
  void ResumeInput() override;
  size_t pending_output() const override { return out.size() + writing_.size(); }

  // Called by Loop::FlushDirty.
  void FlushNow();

  // Set when the broker runs on another loop; kept up to date after every write.
  std::shared_ptr<OutputBacklog> backlog_report;

 protected:
  // Hands received bytes to the broker, keeping a partial packet for next time.
  // Returns false once the link is closing.
  bool Consume(std::string_view chunk);
  // Starts writing `writing_` in full; calls OnWriteDone when finished.
  virtual void StartWrite() = 0;
  // Closes the socket (no more callbacks will deliver data).
  virtual void CloseTransport() = 0;
  void OnWriteDone(bool ok);
  // Closes now, discarding unwritten output; tells the broker. Idempotent.
  void Finish();
  // Reads again after input was paused (the transport stopped reading).
  virtual void ResumeReading() = 0;

  Loop& loop_;
  std::string in_;       // the unconsumed tail of a partial packet
  std::string writing_;  // output being written
  bool writing_now_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool dirty_ = false;
};

}  // namespace herald::mqtt
