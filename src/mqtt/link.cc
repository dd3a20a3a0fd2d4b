#include "mqtt/link.h"

#include <boost/asio/post.hpp>

namespace herald::mqtt {

void Loop::FlushDirty() {
  flush_posted = false;
  // FlushNow may make other links dirty (never this list's), so swap first.
  std::vector<std::shared_ptr<LinkBase>> work;
  work.swap(dirty);
  for (auto& link : work) link->FlushNow();
  // Links made dirty during the loop are already in `dirty`, with a flush posted.
  if (dirty.empty()) {
    work.clear();
    dirty.swap(work);  // keep the capacity
  }
}

void LinkBase::Flush() {
  if (dirty_ || closed_) return;
  dirty_ = true;
  loop_.dirty.push_back(shared_from_this());
  if (!loop_.flush_posted && !loop_.in_poll) {
    loop_.flush_posted = true;
    boost::asio::post(loop_.ioc, [l = &loop_] { l->FlushDirty(); });
  }
}

void LinkBase::Close() {
  if (closed_) return;
  closing_ = true;
  Flush();
}

void LinkBase::FlushNow() {
  dirty_ = false;
  if (closed_ || writing_now_) return;
  if (out.empty()) {
    if (closing_) Finish();
    return;
  }
  writing_.swap(out);
  // A burst leaves a large buffer behind; an idle connection should not keep it.
  if (out.capacity() > (64 << 10)) std::string().swap(out);
  writing_now_ = true;
  StartWrite();
}

void LinkBase::OnWriteDone(bool ok) {
  writing_now_ = false;
  if (writing_.capacity() > (64 << 10)) {
    std::string().swap(writing_);
  } else {
    writing_.clear();
  }
  if (!ok) return Finish();
  FlushNow();
  if (backlog_report) backlog_report->unwritten = pending_output();
}

bool LinkBase::Consume(std::string_view chunk) {
  if (closing_ || closed_) return false;
  std::string_view data = chunk;
  if (!in_.empty()) {
    in_.append(chunk);
    data = in_;
  }
  if (data.empty()) return true;
  size_t used = loop_.handler->OnInput(this, data);
  if (closing_ || closed_) return false;
  if (in_.empty()) {
    in_.assign(data.substr(used));
  } else {
    in_.erase(0, used);
    if (in_.empty()) std::string().swap(in_);
  }
  return true;
}

void LinkBase::ResumeInput() {
  if (!input_paused_) return;
  input_paused_ = false;
  // Not from inside the broker's call that resumed us: on the loop, next.
  boost::asio::post(loop_.ioc, [self = shared_from_this(), this] {
    if (closed_ || closing_ || input_paused_) return;
    if (!in_.empty() && !Consume({})) return;  // the packets read before the pause
    if (!input_paused_) ResumeReading();
  });
}

void LinkBase::Finish() {
  if (closed_) return;
  closed_ = true;
  CloseTransport();
  loop_.handler->OnClosed(this);
}

}  // namespace herald::mqtt
