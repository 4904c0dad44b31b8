// A reader for flat JSON objects: {"key": "text" | true | false | null |
// number, ...}. What the admin API takes in (a certificate upload) and what
// the CLI reads back from it (`{"error": "..."}`); no JSON library needed.
// Nested objects and arrays are refused; strings are decoded (escapes,
// \uXXXX with surrogate pairs, to UTF-8).
//
// Thread: any (pure function).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace tlsedge::proxy {

struct JsonScalar {
  enum class Type { kString, kBool, kNull, kNumber };
  Type type = Type::kNull;
  std::string text;  // kString: decoded; kNumber: as written
  bool boolean = false;
};

using JsonObject = std::map<std::string, JsonScalar, std::less<>>;

// Errors say what and at which byte offset; a repeated key is an error.
Result<JsonObject> parseFlatJsonObject(std::string_view json);

}  // namespace tlsedge::proxy
