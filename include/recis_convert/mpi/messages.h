// Messages between ranks as typed values with one encoding: CBOR (binary JSON) through nlohmann's to_json /
// from_json, which each message type declares next to its definition (NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE where
// its fields are plain; job_messages.h). Big lists travel inside as CBOR byte strings. The helpers below are the only code that encodes or decodes them. A message that does not decode is a
// bug in this program, reported as an internal error (exit 1), never a crash.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

// std::optional<T> as null or T (nlohmann 3.11.2, bookworm's, does not encode optionals itself).
namespace nlohmann {
template <typename T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& value) {
    if (value) j = *value; else j = nullptr;
  }
  static void from_json(const json& j, std::optional<T>& value) {
    if (j.is_null()) value.reset(); else value = j.get<T>();
  }
};
}  // namespace nlohmann

namespace recis_convert {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Error, code, file, message)
inline void to_json(nlohmann::json& j, const Ok&) { j = nlohmann::json::object(); }
inline void from_json(const nlohmann::json&, Ok&) {}

namespace messages_detail {
inline Error corrupt(const char* what, const std::exception& e) {
  return Error{ExitCode::kInternal, "", std::string("corrupt ") + what + " message: " + e.what()};
}

// Takes the text by value: once parsed, it is freed, so that a big message is not held twice.
template <typename T>
Result<T> decode(std::string text, const char* what) {
  try {
    auto j = nlohmann::json::from_cbor(text);
    std::string().swap(text);
    if (j.contains("error")) return j.at("error").get<Error>();
    return j.at("value").get<T>();
  } catch (const nlohmann::json::exception& e) {
    return corrupt(what, e);
  }
}

inline std::string cbor(const nlohmann::json& j) {
  std::string out;
  nlohmann::json::to_cbor(j, nlohmann::detail::output_adapter<char, std::string>(out));
  return out;
}

template <typename T>
std::string encode(const T& value) { return cbor(nlohmann::json{{"value", value}}); }

template <typename T>
std::string encode(const Result<T>& result) {
  return result ? encode<T>(result.value()) : cbor(nlohmann::json{{"error", result.error()}});
}
}  // namespace messages_detail

// Rank 0 computes a value or an error (`compute_on_root` runs there only); every rank returns the same one. This
// is how a rank-0 step that can fail tells the other ranks whether to go on. `what` names the message in the
// internal error should it not decode.
template <typename T, typename Compute>
Result<T> broadcast_result(Comm& comm, Compute&& compute_on_root, const char* what) {
  std::string text;
  if (comm.is_root()) text = messages_detail::encode<T>(Result<T>(compute_on_root()));
  return messages_detail::decode<T>(comm.broadcast_from_root(text), what);
}

// Rank 0's value reaches every rank (the argument is ignored off rank 0).
template <typename T>
Result<T> broadcast_value(Comm& comm, const T& value_on_root, const char* what) {
  return broadcast_result<T>(comm, [&]() -> Result<T> { return value_on_root; }, what);
}

// Each rank's own value from rank 0, for a value too big for a tree, whose type has its own binary encoding
// (T::decode(bytes) giving an optional): the block catalog. encoded_for(rank) runs on rank 0, once per rank, one
// at a time, and gives the bytes of that rank's value (so a share need not be made to be encoded). The bytes are
// the whole message (inside CBOR they would be read back one byte at a time into a growing buffer, twice the
// catalog's size at its peak).
template <typename T, typename EncodedFor>
Result<T> scatter_encoded_from_root(Comm& comm, EncodedFor&& encoded_for, const char* what) {
  std::string text = comm.scatter_from_root([&](int rank) { return std::string(encoded_for(rank)); });
  auto value = T::decode(text);
  if (!value) return Error{ExitCode::kInternal, "", std::string("corrupt ") + what + " message"};
  return std::move(*value);
}

// Each rank's own value or error from rank 0: value_for(rank) runs on rank 0, once per rank, and gives a
// Result<T> (an error reaches that rank as its result).
template <typename T, typename ValueFor>
Result<T> scatter_from_root(Comm& comm, ValueFor&& value_for, const char* what) {
  std::string text = comm.scatter_from_root([&](int rank) { return messages_detail::encode<T>(Result<T>(value_for(rank))); });
  return messages_detail::decode<T>(std::move(text), what);
}

// A plan's scatter: each rank receives its share of what rank 0 planned (`shares`, indexed by rank, moved out), or,
// when the planning failed on rank 0, that `failure`, on every rank alike.
template <typename T>
Result<T> scatter_plan_from_root(Comm& comm, const std::optional<Error>& failure, std::vector<T>& shares,
                                 const char* what) {
  return scatter_from_root<T>(
      comm,
      [&](int rank) -> Result<T> {
        if (failure) return *failure;
        return std::move(shares[static_cast<size_t>(rank)]);
      },
      what);
}

// gather_to_root for a value with its own binary encoding (as scatter_encoded_from_root): a rank's packed file
// results.
template <typename T>
Result<std::vector<T>> gather_encoded_to_root(Comm& comm, T mine, const char* what) {
  std::vector<T> out;
  std::vector<std::string> texts = comm.gather_to_root(comm.is_root() ? std::string() : mine.encode());
  for (size_t rank = 0; rank < texts.size(); ++rank) {
    if (rank == 0) {
      out.push_back(std::move(mine));
      continue;
    }
    auto value = T::decode(texts[rank]);
    std::string().swap(texts[rank]);
    if (!value) return Error{ExitCode::kInternal, "", std::string("corrupt ") + what + " message"};
    out.push_back(std::move(*value));
  }
  return out;
}

// Every rank's value, indexed by rank: on rank 0 only (empty elsewhere), or on every rank. Rank 0 keeps its own
// value as it is (a million tensors need not be encoded and decoded to stay where they are); each other rank's
// text is decoded and freed in turn.
template <typename T>
Result<std::vector<T>> gather_to_root(Comm& comm, T mine, const char* what) {
  std::vector<T> out;
  std::vector<std::string> texts = comm.gather_to_root(comm.is_root() ? std::string() : messages_detail::encode<T>(mine));
  for (size_t rank = 0; rank < texts.size(); ++rank) {
    if (rank == 0) {
      out.push_back(std::move(mine));
      continue;
    }
    auto value = messages_detail::decode<T>(std::move(texts[rank]), what);
    if (!value) return value.error();
    out.push_back(std::move(value).value());
  }
  return out;
}

// Rank 0, on what it gathered: the failure to gather, else the first error any rank reported (its `error`
// member), in rank order, so the message is the same whatever the timing.
template <typename T>
std::optional<Error> first_error(const Result<std::vector<T>>& gathered) {
  if (!gathered) return gathered.error();
  for (const auto& report : gathered.value()) {
    if (report.error) return report.error;
  }
  return std::nullopt;
}

// A step each rank takes on its own whose failure must stop every rank alike (each reads the same headers, say):
// every rank returns the first error in rank order, or Ok.
inline Status agree_on_first_error(Comm& comm, const Status& mine, const char* what) {
  auto everyone = gather_to_root(comm, mine ? std::optional<Error>() : std::optional<Error>(mine.error()), what);
  return broadcast_result<Ok>(
      comm,
      [&]() -> Status {
        if (!everyone) return everyone.error();
        for (const auto& error : everyone.value()) {
          if (error) return *error;
        }
        return Ok{};
      },
      what);
}

template <typename T>
Result<std::vector<T>> allgather(Comm& comm, const T& mine, const char* what) {
  std::vector<T> out;
  for (const auto& text : comm.allgather(messages_detail::encode<T>(mine))) {
    auto value = messages_detail::decode<T>(text, what);
    if (!value) return value.error();
    out.push_back(std::move(value).value());
  }
  return out;
}

}  // namespace recis_convert
