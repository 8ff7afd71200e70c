// Human-readable listings of every registered method, task and mask (what `attnbench list` prints).
#pragma once
#include <string>

namespace attnbench {

std::string list_methods();
std::string list_tasks();
std::string list_masks();

}  // namespace attnbench
