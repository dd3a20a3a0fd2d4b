#include "mqtt/remote_link.h"

#include <boost/asio/post.hpp>

namespace herald::mqtt {
namespace asio = boost::asio;

void ProxyLink::Flush() {
  if (dirty || closed_) return;
  dirty = true;
  hub_.MarkDirty(shared_from_this());
}

void ProxyLink::Close() {
  closing_ = true;
  close_after_flush = true;
  Flush();
}

void ProxyLink::PauseInput() {
  Link::PauseInput();
  asio::post(io_.ioc, [t = transport_] {
    if (auto link = t.lock()) link->PauseInput();
  });
}

void ProxyLink::ResumeInput() {
  if (!input_paused_) return;
  input_paused_ = false;
  // Not inside the broker call that resumed it: next turn, the bytes that waited
  // here first, then the connection's loop reads again.
  asio::post(hub_.loop().ioc, [self = shared_from_this()] {
    if (self->closed_ || self->input_paused_) return;
    self->Consume();
    if (self->input_paused_) return;
    asio::post(self->io_.ioc, [t = self->transport_] {
      if (auto link = t.lock()) link->ResumeInput();
    });
  });
}

void ProxyLink::Input(std::string bytes) {
  if (closing_ || closed_) return;
  in_.append(bytes);
  Consume();
}

void ProxyLink::Consume() {
  if (input_paused_ || in_.empty() || closing_ || closed_) return;
  size_t used = hub_.broker().OnInput(this, in_);
  if (closed_) return;
  in_.erase(0, used);
  if (in_.empty() && in_.capacity() > (64 << 10)) std::string().swap(in_);
}

void ProxyLink::TransportClosed() {
  if (closed_) return;
  closed_ = true;
  hub_.broker().OnClosed(this);
}

void ProxyHub::MarkDirty(std::shared_ptr<ProxyLink> p) {
  dirty_.push_back(std::move(p));
  if (posted_) return;
  posted_ = true;
  asio::post(loop_.ioc, [this] { FlushAll(); });
}

void ProxyHub::FlushAll() {
  posted_ = false;
  struct Entry {
    std::weak_ptr<LinkBase> link;
    std::string bytes;
    bool close;
    std::shared_ptr<OutputBacklog> backlog;
  };
  // One task per loop for all of its connections' output this turn.
  std::unordered_map<Loop*, std::vector<Entry>> by_loop;
  std::vector<std::shared_ptr<ProxyLink>> work;
  work.swap(dirty_);
  for (auto& p : work) {
    p->dirty = false;
    if (p->out.empty() && !p->close_after_flush) continue;
    p->backlog->posted += p->out.size();
    by_loop[&p->io()].push_back({p->transport(), std::move(p->out), p->close_after_flush, p->backlog});
    p->out.clear();
    p->close_after_flush = false;
  }
  for (auto& [loop, entries] : by_loop) {
    asio::post(loop->ioc, [entries = std::move(entries)]() mutable {
      for (Entry& e : entries) {
        e.backlog->posted -= e.bytes.size();
        auto link = e.link.lock();
        if (!link) continue;
        link->out.append(e.bytes);
        if (e.close) {
          link->Close();
        } else {
          link->Flush();
        }
        e.backlog->unwritten = link->pending_output();
      }
    });
  }
}

void RemoteHandler::OnOpen(Link* link) {
  auto transport = static_cast<LinkBase*>(link)->shared_from_this();
  auto proxy = std::make_shared<ProxyLink>(hub_, io_, transport, link->Remote());
  transport->backlog_report = proxy->backlog;
  proxies_[link] = proxy;
  asio::post(hub_.loop().ioc, [proxy, &hub = hub_] { hub.broker().OnOpen(proxy.get()); });
}

size_t RemoteHandler::OnInput(Link* link, std::string_view input) {
  auto it = proxies_.find(link);
  if (it == proxies_.end()) return input.size();
  asio::post(hub_.loop().ioc, [proxy = it->second, bytes = std::string(input)]() mutable {
    proxy->Input(std::move(bytes));
  });
  return input.size();  // the broker's side keeps any partial packet
}

void RemoteHandler::OnClosed(Link* link) {
  auto it = proxies_.find(link);
  if (it == proxies_.end()) return;
  asio::post(hub_.loop().ioc, [proxy = it->second] { proxy->TransportClosed(); });
  proxies_.erase(it);
}

}  // namespace herald::mqtt
