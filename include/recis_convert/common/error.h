// Errors as values: every failure carries an exit code, the file it concerns and a one-line message.
// main() is the only place that turns an Error into a process exit code and a printed line.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace recis_convert {

// Documented in README ("Exit codes"). Values are part of the CLI contract.
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,     // anything else (a bug, an MPI failure)
  kUsage = 2,        // bad command line or job config
  kBadInput = 3,     // bad, inconsistent or incomplete checkpoint
  kOutput = 4,       // cannot write the export (exists, permission, disk full)
  kInterrupted = 5,  // stopped by a signal (SIGTERM/SIGINT) before publishing
  kStalled = 6,      // stopped by the stall watchdog (--stall-timeout): a rank silent or stuck
};

struct Error {
  ExitCode code = ExitCode::kInternal;
  std::string file;     // the file concerned, may be empty
  std::string message;  // what is wrong, without the file name

  // "FILE: message" or just "message": the text after "recis-convert: error: ".
  std::string describe() const { return file.empty() ? message : file + ": " + message; }
};

inline Error bad_input(std::string file, std::string message) {
  return Error{ExitCode::kBadInput, std::move(file), std::move(message)};
}
inline Error output_error(std::string file, std::string message) {
  return Error{ExitCode::kOutput, std::move(file), std::move(message)};
}
inline Error usage_error(std::string message) { return Error{ExitCode::kUsage, "", std::move(message)}; }

// A name as messages quote it: a JSON string, so quotes, control characters and non-ASCII names stay readable
// (bytes that are not UTF-8 become U+FFFD: a message about a bad name must not fail itself).
std::string quoted_name(std::string_view name);

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). Every name the
// tool records in JSON (paths, tables, assets, versions) must be: JSON text is UTF-8.
bool is_valid_utf8(std::string_view text);

// A value or an Error. Small on purpose: check with ok() (or bool), then value() or error().
template <typename T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

// For functions that return nothing on success.
struct Ok {};
using Status = Result<Ok>;

}  // namespace recis_convert
