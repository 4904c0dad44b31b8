// The one way tlsedge writes a JSON document: nlohmann/json's dump(), with
// bytes that are not UTF-8 (a certificate's subject, a file read, a CA's
// error text) written as U+FFFD instead of throwing, so that no input can
// make serialising fail. Every JSON document tlsedge reads or writes goes
// through nlohmann/json; the one exception is base/json_string.h, the
// hot-path escaper of log and access log lines.
//
// Documents tlsedge makes for people (`--json`, the admin API, meta.json)
// are nlohmann::ordered_json: keys in the order written.
//
// Include only from .cc files; a library that does links
// nlohmann_json::nlohmann_json PRIVATE.
//
// Thread: any (pure function).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tlsedge::certstore {

// `value` as compact JSON text (or indented by `indent` spaces).
template <class Json>
std::string jsonText(const Json& value, int indent = -1) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace tlsedge::certstore
