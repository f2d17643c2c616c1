#pragma once
// Bounded hand-off from a fetch thread to Source::next(): by count and by bytes.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "ingest/source.hpp"

namespace mv::ingest::net {

class MessageQueue {
  public:
    MessageQueue(std::size_t max_count, std::size_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}

    // Blocks while full; false once the consumer has gone (stop()).
    bool push(RawMessage&& m) {
        std::unique_lock lk(mu_);
        // One message always fits, so a message larger than the byte bound still passes.
        not_full_.wait(lk, [&] { return stopped_ || q_.empty() || (q_.size() < max_count_ && bytes_ + m.bytes.size() <= max_bytes_); });
        if (stopped_) return false;
        bytes_ += m.bytes.size();
        q_.push_back(std::move(m));
        not_empty_.notify_one();
        return true;
    }
    // Producer is done: next pop() after the queue drains returns nullopt.
    void close() {
        std::lock_guard lk(mu_);
        closed_ = true;
        not_empty_.notify_all();
    }
    // Consumer is gone: wakes and fails pushes.
    void stop() {
        std::lock_guard lk(mu_);
        stopped_ = true;
        not_full_.notify_all();
        not_empty_.notify_all();
    }
    bool stopped() const {
        std::lock_guard lk(mu_);
        return stopped_;
    }
    std::optional<RawMessage> pop() {
        std::unique_lock lk(mu_);
        not_empty_.wait(lk, [&] { return !q_.empty() || closed_ || stopped_; });
        if (q_.empty()) return std::nullopt;
        RawMessage m = std::move(q_.front());
        q_.pop_front();
        bytes_ -= m.bytes.size();
        not_full_.notify_one();
        return m;
    }

  private:
    const std::size_t max_count_, max_bytes_;
    mutable std::mutex mu_;
    std::condition_variable not_full_, not_empty_;
    std::deque<RawMessage> q_;
    std::size_t bytes_ = 0;
    bool closed_ = false, stopped_ = false;
};

}  // namespace mv::ingest::net
