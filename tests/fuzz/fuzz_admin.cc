// The admin API's request handling (tests/fuzz/README.md): bytes from a
// client of the admin socket, parsed by http::HttpParser with AdminServer's
// limits, each complete request handed to AdminApi::handle as AdminServer
// hands it (method, target, body, Accept: text/plain) with a configuration
// whose state directory is an empty temporary directory, emptied after each
// input: routing, percent-decoding of names and queries, the JSON upload
// body, credential validation, which, list, show, rm, acme (no manager: 503).
// Invariants: every answer is a known status with a JSON error body, 405
// names the allowed methods, no answer carries a private key; the web
// console's answers (/, /console, /console/...) and only they carry its
// Content-Security-Policy, and its redirect a Location.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "admin/admin_api.h"
#include "admin/admin_server.h"
#include "base/log.h"
#include "certstore/selector.h"
#include "http_fuzz.h"

namespace {

struct Fixture {
  Fixture() {
    tlsedge::log::setMinLevel(tlsedge::log::Level::kError);  // refusals log warnings
    const std::filesystem::path shm("/dev/shm");
    const auto base = std::filesystem::exists(shm) ? shm : std::filesystem::temp_directory_path();
    state = base / ("tlsedge-fuzz-admin-" + std::to_string(::getpid()));
    std::filesystem::remove_all(state);
    auto loaded = tlsedge::conf::loadString("state_dir: " + state.string() +
                                                "\nsites:\n  - name: s\n    hosts: [a.example]\n   "
                                                " routes: [{ path: /, respond: {} }]\n",
                                            "fuzz.yaml", "/");
    FUZZ_CHECK(loaded.ok());
    config = *loaded;
    selector = tlsedge::certstore::Selector::make({});
  }
  std::filesystem::path state;
  tlsedge::conf::ConfigPtr config;
  std::shared_ptr<const tlsedge::certstore::Selector> selector;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

constexpr const char* kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void checkResponse(const tlsedge::admin::AdminRequest& request,
                   const tlsedge::admin::AdminResponse& r) {
  static constexpr int kKnown[] = {200, 201, 202, 302, 400, 404, 405, 409, 413, 422, 503};
  bool known = false;
  for (int status : kKnown) known = known || r.status == status;
  FUZZ_CHECK(known);
  if (r.status >= 400) FUZZ_CHECK(r.body.starts_with("{\"error\":"));
  if (r.status == 405) FUZZ_CHECK(!r.allow.empty());
  const std::string_view path =
      std::string_view(request.target).substr(0, request.target.find('?'));
  const bool console = path == "/" || path == "/console" || path.starts_with("/console/");
  bool policy = false;
  bool location = false;
  for (const auto& [name, value] : r.headers) {
    policy = policy || name == "Content-Security-Policy";
    location = location || name == "Location";
  }
  FUZZ_CHECK(policy == console);
  FUZZ_CHECK(location == (r.status == 302));
  // No run of base64 from the uploaded key's body lines (24 characters or
  // more, found nowhere else in the request: a 400 may name a field, the
  // target or a BEGIN/END line) comes back.
  auto upload = tlsedge::admin::parseCertificateUpload(request.body);
  if (!upload.ok()) return;
  std::string_view lines = upload->key;
  while (!lines.empty()) {
    const size_t eol = std::min(lines.find('\n'), lines.size());
    std::string_view rest = lines.substr(0, eol);
    lines.remove_prefix(std::min(eol + 1, lines.size()));
    if (rest.find("-----") != std::string_view::npos) continue;
    while (!rest.empty()) {
      const size_t start = std::min(rest.find_first_of(kBase64), rest.size());
      rest.remove_prefix(start);
      const size_t length = std::min(rest.find_first_not_of(kBase64), rest.size());
      const std::string_view run = rest.substr(0, length);
      rest.remove_prefix(length);
      if (length < 24 || request.target.find(run) != std::string::npos) continue;
      if (request.body.find(run) != request.body.rfind(run)) continue;
      FUZZ_CHECK(r.body.find(run) == std::string::npos);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  Fixture& f = fixture();
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  tlsedge::fuzz::ParseOptions options;
  options.kind = tlsedge::http::HttpParser::Kind::kRequest;
  options.maxHeadBytes = tlsedge::admin::AdminServer::kMaxHeadBytes;
  options.maxHeaders = tlsedge::admin::AdminServer::kMaxHeaders;
  const auto transcript = tlsedge::fuzz::parse(data, 0, options);
  int changes = 0;
  tlsedge::admin::AdminApi api(
      {[&f] { return f.config; }, [&f] { return f.selector; },
       [&changes](const std::string&, tlsedge::certstore::CredentialsPtr) { ++changes; }});
  for (const auto& m : transcript.messages) {
    if (!m.complete) break;
    if (m.body.size() > tlsedge::admin::AdminServer::kMaxBodyBytes) break;  // 413 there
    const std::string* accept = m.head.find("Accept");
    const tlsedge::admin::AdminRequest request{
        m.head.method, m.head.target, m.body,
        accept != nullptr && accept->find("text/plain") != std::string::npos};
    checkResponse(request, api.handle(request));
  }
  if (changes > 0 || std::filesystem::exists(f.state)) std::filesystem::remove_all(f.state);
  return 0;
}
