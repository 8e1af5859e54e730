#include "multibox/status.hpp"

namespace multibox {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::ok: return "ok";
    case ErrorCode::invalid_input: return "invalid input";
    case ErrorCode::invalid_config: return "invalid config";
    case ErrorCode::shape_mismatch: return "shape mismatch";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::io_error: return "I/O error";
    case ErrorCode::internal: return "internal error";
  }
  return "unknown error";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(multibox::to_string(code_)) + ": " + message_;
}

}  // namespace multibox
