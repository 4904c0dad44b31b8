#include "acme/problem.h"

#include <nlohmann/json.hpp>

namespace tlsedge::acme {
namespace {

constexpr std::string_view kAcmeErrorPrefix = "urn:ietf:params:acme:error:";

std::string stringMember(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<Problem> fromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type")) return std::nullopt;
  Problem p;
  p.type = stringMember(j, "type");
  p.detail = stringMember(j, "detail");
  if (auto it = j.find("status"); it != j.end() && it->is_number_integer()) {
    p.status = it->get<int>();
  }
  if (auto it = j.find("identifier"); it != j.end() && it->is_object()) {
    p.identifier = stringMember(*it, "value");
  }
  if (auto it = j.find("subproblems"); it != j.end() && it->is_array()) {
    for (const auto& sub : *it) {
      if (auto parsed = fromJson(sub)) p.subproblems.push_back(std::move(*parsed));
    }
  }
  return p;
}

}  // namespace

std::string Problem::kind() const {
  static constexpr std::string_view kKnown[] = {"accountDoesNotExist",
                                                "alreadyRevoked",
                                                "badCSR",
                                                "badNonce",
                                                "badPublicKey",
                                                "badRevocationReason",
                                                "badSignatureAlgorithm",
                                                "caa",
                                                "compound",
                                                "connection",
                                                "dns",
                                                "externalAccountRequired",
                                                "incorrectResponse",
                                                "invalidContact",
                                                "malformed",
                                                "orderNotReady",
                                                "rateLimited",
                                                "rejectedIdentifier",
                                                "serverInternal",
                                                "tls",
                                                "unauthorized",
                                                "unsupportedContact",
                                                "unsupportedIdentifier",
                                                "userActionRequired"};
  for (std::string_view known : kKnown) {
    if (is(known)) return std::string(known);
  }
  return "other";
}

bool Problem::is(std::string_view shortType) const {
  return type.size() == kAcmeErrorPrefix.size() + shortType.size() &&
         type.starts_with(kAcmeErrorPrefix) && type.ends_with(shortType);
}

std::string Problem::text() const {
  std::string shortType =
      type.starts_with(kAcmeErrorPrefix) ? type.substr(kAcmeErrorPrefix.size()) : type;
  std::string out = shortType.empty() ? "problem" : shortType;
  if (!detail.empty()) out += ": " + detail;
  if (status != 0) out += " (" + std::to_string(status) + ")";
  for (const Problem& sub : subproblems) {
    out +=
        " [" + (sub.identifier.empty() ? std::string() : sub.identifier + ": ") + sub.text() + "]";
  }
  return out;
}

std::optional<Problem> parseProblem(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return fromJson(j);
}

}  // namespace tlsedge::acme
