// A watchdog for cells that never return. The timing policy's timeout_s can only act between runs: a
// method stuck inside one call (a deadlock, an endless loop, a GPU kernel that never finishes) would stall
// the whole suite. The runner arms this watchdog around the method's part of each cell, and around a
// task's building of the instance its cells share; when the deadline passes, a thread of its own runs
// the expiry action, which records the cell (or the instance's cells) as failed and restarts the process
// past it (harness/src/runner.cpp).
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace attnbench {

class Watchdog {
 public:
  Watchdog();
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Runs `on_expiry` on the watchdog's thread once `seconds` of unpaused time have passed, unless
  // disarm() comes first. The action runs under the watchdog's lock, so disarm() waits for it: an
  // action that ends the process (exec, _Exit) is never overtaken by the caller going on.
  void arm(double seconds, std::function<void()> on_expiry);
  void disarm();
  // Stops the clock, e.g. while the float64 oracle runs inside a cell (not the method's time);
  // resume() restarts it with what was left. Both do nothing when the watchdog is not armed.
  void pause();
  void resume();
  bool armed();

 private:
  using clock = std::chrono::steady_clock;
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, armed_ = false, paused_ = false;
  clock::time_point deadline_;
  clock::duration left_{};  // while paused
  std::function<void()> action_;
  std::thread thread_;  // last: starts once the members above exist
};

// RAII pause of an armed watchdog (null: nothing).
class WatchdogPause {
 public:
  explicit WatchdogPause(Watchdog* w) : w_(w) {
    if (w_) w_->pause();
  }
  ~WatchdogPause() {
    if (w_) w_->resume();
  }
  WatchdogPause(const WatchdogPause&) = delete;
  WatchdogPause& operator=(const WatchdogPause&) = delete;

 private:
  Watchdog* w_;
};

}  // namespace attnbench
