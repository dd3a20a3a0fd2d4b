#include "mqtt/tcp_poller.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cerrno>
#include <boost/asio/post.hpp>
#include <cstring>

namespace herald::mqtt {
namespace {

// MQTT over plain TCP on a raw, non-blocking descriptor. Reads go into the loop's
// shared buffer, so an idle connection holds no read buffer; writes are one
// non-blocking send per turn, with EPOLLOUT only while the socket buffer is full.
class TcpLink final : public LinkBase {
 public:
  TcpLink(Loop& loop, TcpPoller& poller, int fd) : LinkBase(loop), poller_(poller), fd_(fd) {}
  ~TcpLink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  std::string Remote() const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    return std::string(host) + ":" + std::to_string(port);
  }

  void OnEvents(std::uint32_t events) {
    if (closed_) return;
    if (events & EPOLLOUT) SendPending();
    if (closed_) return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable();
  }

  void OnReadable() {
    // Edge-triggered: read until a short read (the socket buffer is empty; new data
    // raises a new edge). Bounded, so a fast sender cannot starve the loop's other
    // connections: whatever is left is read next turn.
    if (closed_ || input_paused_) return;  // resumed through ResumeReading()
    for (int round = 0; round < 4; ++round) {
      ssize_t n = ::recv(fd_, loop_.read_buffer.data(), loop_.read_buffer.size(), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Finish();
      if (!Consume(std::string_view(loop_.read_buffer.data(), static_cast<size_t>(n)))) return;
      if (!dirty_ && !writing_now_) {
        // Nothing to answer with, so the kernel would delay its ACK (up to 40 ms), and a
        // peer with Nagle on holds its next small packet until then: a client acking a
        // copy of its own publish stalls every message. ACK at once instead.
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
      }
      if (input_paused_) return;  // the rest waits in the socket buffer
      if (static_cast<size_t>(n) < loop_.read_buffer.size()) return;
    }
    poller_.ReadAgain(shared_from_this());
  }

 private:
  void ResumeReading() override { poller_.ReadAgain(shared_from_this()); }

  void StartWrite() override {
    sent_ = 0;
    SendPending();
  }

  void SendPending() {
    while (sent_ < writing_.size()) {
      ssize_t n = ::send(fd_, writing_.data() + sent_, writing_.size() - sent_,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!want_write_) {
          want_write_ = true;
          poller_.WantWrite(fd_, this, true);
        }
        return;
      }
      if (n <= 0) return OnWriteDone(false);
      sent_ += static_cast<size_t>(n);
    }
    if (want_write_) {
      want_write_ = false;
      poller_.WantWrite(fd_, this, false);
    }
    OnWriteDone(true);
  }

  void CloseTransport() override {
    poller_.Forget(fd_);
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    fd_ = -1;
  }

  TcpPoller& poller_;
  int fd_;
  size_t sent_ = 0;
  bool want_write_ = false;
};

}  // namespace

TcpPoller::TcpPoller(Loop& loop) : loop_(loop) {}

TcpPoller::~TcpPoller() {
  if (watch_) {
    boost::system::error_code ec;
    watch_->close(ec);  // closes epfd_
  } else if (epfd_ >= 0) {
    ::close(epfd_);
  }
}

Status TcpPoller::Init() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return Status::IoError(std::string("epoll_create1: ") + std::strerror(errno));
  watch_ = std::make_unique<boost::asio::posix::stream_descriptor>(loop_.ioc, epfd_);
  Arm();
  return Status::Ok();
}

void TcpPoller::Adopt(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto link = std::make_shared<TcpLink>(loop_, *this, fd);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = link.get();
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return;  // the link closes fd
  if (static_cast<size_t>(fd) >= links_.size()) links_.resize(static_cast<size_t>(fd) + 1024);
  links_[static_cast<size_t>(fd)] = link;
  loop_.handler->OnOpen(link.get());
}

void TcpPoller::WantWrite(int fd, void* tag, bool on) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET | (on ? EPOLLOUT : 0u);
  ev.data.ptr = tag;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void TcpPoller::Forget(int fd) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  if (fd < 0 || static_cast<size_t>(fd) >= links_.size() || !links_[static_cast<size_t>(fd)]) return;
  // The link may be running right now, or have an event later in this batch:
  // it is destroyed only after the batch.
  graveyard_.push_back(std::move(links_[static_cast<size_t>(fd)]));
}

void TcpPoller::CloseAll() {
  std::vector<std::shared_ptr<LinkBase>> all;
  for (auto& link : links_) {
    if (link) all.push_back(link);
  }
  for (auto& link : all) link->Close();
}

void TcpPoller::Arm() {
  watch_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this](boost::system::error_code ec) {
                       if (ec) return;
                       Poll();
                     });
}

void TcpPoller::ReadAgain(std::shared_ptr<LinkBase> link) {
  read_again_.push_back(std::move(link));
  if (read_again_posted_) return;
  read_again_posted_ = true;
  boost::asio::post(loop_.ioc, [this] { RunReadAgain(); });
}

void TcpPoller::RunReadAgain() {
  read_again_posted_ = false;
  std::vector<std::shared_ptr<LinkBase>> work;
  work.swap(read_again_);
  loop_.in_poll = true;
  for (auto& link : work) static_cast<TcpLink*>(link.get())->OnReadable();
  loop_.in_poll = false;
  if (!loop_.dirty.empty()) loop_.FlushDirty();
}

void TcpPoller::Poll() {
  Drain();
  Arm();
}

void TcpPoller::Drain() {
  loop_.in_poll = true;
  epoll_event events[512];
  // Drain what is ready now, in a few batches at most, then go back to Asio so
  // timers, other transports and posted work get their turn.
  for (int batch = 0; batch < 4; ++batch) {
    int n = ::epoll_wait(epfd_, events, 512, 0);
    for (int i = 0; i < n; ++i) {
      static_cast<TcpLink*>(events[i].data.ptr)->OnEvents(events[i].events);
    }
    graveyard_.clear();
    if (n < 512) break;
  }
  // Output produced above goes out before the next wait.
  loop_.in_poll = false;
  if (!loop_.dirty.empty()) loop_.FlushDirty();
  graveyard_.clear();
}

}  // namespace herald::mqtt
