// The watchdog's thread sleeps on a condition variable until the armed deadline or a change.
#include "attnbench/watchdog.hpp"

namespace attnbench {

Watchdog::Watchdog() : thread_([this] { loop(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::arm(double seconds, std::function<void()> on_expiry) {
  {
    std::lock_guard lk(mu_);
    armed_ = true;
    paused_ = false;
    deadline_ = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
    action_ = std::move(on_expiry);
  }
  cv_.notify_all();
}

void Watchdog::disarm() {
  {
    std::lock_guard lk(mu_);
    armed_ = false;
    paused_ = false;
    action_ = nullptr;
  }
  cv_.notify_all();
}

void Watchdog::pause() {
  std::lock_guard lk(mu_);
  if (!armed_ || paused_) return;
  paused_ = true;
  left_ = deadline_ - clock::now();
}

void Watchdog::resume() {
  {
    std::lock_guard lk(mu_);
    if (!armed_ || !paused_) return;
    paused_ = false;
    deadline_ = clock::now() + left_;
  }
  cv_.notify_all();
}

bool Watchdog::armed() {
  std::lock_guard lk(mu_);
  return armed_;
}

void Watchdog::loop() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (!armed_ || paused_) {
      cv_.wait(lk);
      continue;
    }
    cv_.wait_until(lk, deadline_);
    if (stop_ || !armed_ || paused_ || clock::now() < deadline_) continue;  // woken by a change, or early
    std::function<void()> action = std::move(action_);
    armed_ = false;
    action_ = nullptr;
    if (action) action();  // under the lock: disarm() waits until it is done
  }
}

}  // namespace attnbench
