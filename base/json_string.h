// JSON string literals for the lines tlsedge writes itself (access log,
// `--log-format json`). Any input bytes give valid JSON: `"` and `\` are
// escaped, bytes outside printable ASCII are written as \u00XX (read as
// Latin-1), so hostile bytes (control characters, invalid UTF-8, a NUL)
// can neither break the line nor the JSON.
//
// The sanctioned exception to "JSON through nlohmann" (docs/principles.md):
// a line per request must not build a DOM.
//
// Pure function; any thread.
#pragma once

#include <string>
#include <string_view>

namespace tlsedge {

// Appends `s` as a quoted JSON string to `out`.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace tlsedge
