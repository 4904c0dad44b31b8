// The web console (docs/console.md): a page for panel operators that speaks
// only the JSON API, served by AdminApi on the management listener and the
// Unix socket alike. Its files are admin/console/*, embedded in the binary
// at build time (admin/embed_console.cmake writes them into a generated
// console_files.cc), so that editing those files is what changes the page
// and nothing is read from disk or fetched from elsewhere at run time.
//
//   GET /console, /console/       index.html
//   GET /console/FILE             an embedded file (404 for any other)
//   GET /                         302 to /console/
//
// No credential is needed for these (admin/access.h: requiredScopes); the
// page asks for an API token and sends it with each API call. Every answer
// carries Cache-Control: no-store, a Content-Security-Policy that allows
// only this origin's script, style and connections (no inline script),
// X-Content-Type-Options: nosniff, X-Frame-Options: DENY and
// Referrer-Policy: no-referrer.
//
// Thread: any (the files are constant).
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "admin/admin_api.h"

namespace tlsedge::admin {

struct ConsoleFile {
  std::string_view name;  // "index.html", "app.js", ...
  std::string_view body;
};

// The embedded files (defined in the generated console_files.cc).
std::span<const ConsoleFile> consoleFiles();

// "text/html; charset=utf-8" for a .html name, text/javascript for .js,
// text/css for .css, image/svg+xml for .svg, image/png for .png, else
// application/octet-stream.
std::string_view consoleContentType(std::string_view name);

// The answer for a console path (above) with `method`, or nullopt when
// `path` (without its query) is not one.
std::optional<AdminResponse> consoleAnswer(std::string_view method, std::string_view path);

}  // namespace tlsedge::admin
