// The message of the std::invalid_argument a call throws ("" if it throws none), for tests
// that check what an invalid configuration or partition is told.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

namespace paci::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace paci::testing
