// The YAML configuration loader (tests/fuzz/README.md): conf::loadString,
// what `tlsedge check`, `run` and every reload parse (yaml-cpp's events into
// conf's own tree, then every section's checks: listeners, sites, routes,
// upstreams, limits, acme, storage). It reads no file. Invariant: a refusal
// names at least one problem, every line of it "fuzz.yaml:LINE:COLUMN: ...".
#include <cstdint>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "fuzz_check.h"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(bytes), size);
  auto config = tlsedge::conf::loadString(yaml, "fuzz.yaml", "/fuzz-base");
  if (config.ok()) {
    FUZZ_CHECK(*config != nullptr);
    return 0;
  }
  const std::string& message = config.error().message;
  FUZZ_CHECK(!message.empty());
  std::string_view rest = message;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    FUZZ_CHECK(rest.substr(0, end).starts_with("fuzz.yaml:"));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  return 0;
}
