#include "cli/cli_common.h"

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "admin/sites_api.h"

namespace tlsedge::cli {

Result<conf::ConfigPtr> loadCliConfig(const std::string& path) {
  auto yaml = !path.empty() ? conf::loadFile(path)
                            : conf::loadString(conf::kDefaultConfigYaml, "<embedded default>",
                                               std::filesystem::current_path().string());
  if (!yaml) return yaml.error();
  // The sites the admin API keeps in the state directory are sites as the
  // daemon's are: offline, a certificate one of them binds is in use too.
  return admin::withStoredSites(*yaml);
}

std::string percentEncode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '*') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

std::string adminReplyError(const admin::AdminReply& reply, const std::string& socket) {
  const auto body = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object()) {
    if (auto it = body.find("error"); it != body.end() && it->is_string()) {
      return it->get<std::string>();
    }
  }
  return "admin socket " + socket + ": HTTP " + std::to_string(reply.status);
}

}  // namespace tlsedge::cli
