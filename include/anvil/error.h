// The one error type of Anvil's public API.
//
// User mistakes and bad files (a corrupt model, an unsupported op, a shape
// outside a profile) are reported by throwing anvil::Error with a message that
// names the file, node or tensor at fault and says what to do. Broken internal
// invariants are ErrorKind::kInternal: those are bugs in Anvil.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace anvil {

enum class ErrorKind {
  kInvalidArgument,  // a bad option, path, shape or value passed by the caller
  kInvalidModel,     // a model file that is malformed or inconsistent
  kUnsupported,      // valid input that Anvil does not handle (yet)
  kIo,               // a file that cannot be opened, read or written
  kIncompatible,     // a plan built for another GPU or library version
  kGpu,              // a CUDA, cuDNN or cuBLAS call failed
  kCancelled,        // work the caller cancelled (a pipeline shut down with requests queued)
  kInternal,         // a broken invariant inside Anvil
};

// Returns a short lower-case name for `kind`, e.g. "invalid model".
std::string_view to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Concatenates any streamable values into one string: cat("node ", name, ": ", n).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

// Throws Error(kind, cat(parts...)).
template <typename... Parts>
[[noreturn]] void fail(ErrorKind kind, const Parts&... parts) {
  throw Error(kind, cat(parts...));
}

}  // namespace anvil

// Checks an internal invariant; a failure is a bug in Anvil, never a user error.
#define ANVIL_CHECK(cond)                                                   \
  do {                                                                      \
    if (!(cond))                                                            \
      ::anvil::fail(::anvil::ErrorKind::kInternal, __FILE__, ":", __LINE__, \
                    ": internal check failed: " #cond);                     \
  } while (false)
