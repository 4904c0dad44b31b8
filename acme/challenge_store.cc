#include "acme/challenge_store.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tlsedge::acme {

void ChallengeStore::put(const std::string& token, const std::string& keyAuthorization) {
  auto next = std::make_shared<Map>(*map_.load());
  (*next)[token] = keyAuthorization;
  map_.store(std::move(next));
}

void ChallengeStore::remove(const std::string& token) {
  auto next = std::make_shared<Map>(*map_.load());
  next->erase(token);
  map_.store(std::move(next));
}

Status ChallengeStore::loadDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  auto next = std::make_shared<Map>();
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    map_.store(std::move(next));
    return Ok{};
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string token = entry.path().filename().string();
    if (!validToken(token)) continue;  // editor backups, temp files
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    std::string value = content.str();
    auto notSpace = [](char c) { return c != ' ' && c != '\n' && c != '\r' && c != '\t'; };
    while (!value.empty() && !notSpace(value.back())) value.pop_back();
    size_t start = 0;
    while (start < value.size() && !notSpace(value[start])) ++start;
    (*next)[token] = value.substr(start);
  }
  if (ec) return makeError("challenges " + dir + ": " + ec.message());
  map_.store(std::move(next));
  return Ok{};
}

std::optional<std::string> ChallengeStore::find(std::string_view token) const {
  auto snapshot = map_.load();
  auto it = snapshot->find(token);
  if (it == snapshot->end()) return std::nullopt;
  return it->second;
}

bool validToken(std::string_view token) {
  if (token.empty() || token.size() > 256) return false;
  for (char c : token) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace tlsedge::acme
