#include "acme/chain.h"

#include <openssl/bio.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string_view>

#include "base/ascii.h"

namespace tlsedge::acme {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a link's parameters (`;rel="alternate";...`) include rel=alternate
// (the rel value may list several relation types).
bool isAlternate(std::string_view params) {
  while (!params.empty()) {
    size_t semi = params.find(';');
    std::string_view param = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    size_t eq = param.find('=');
    if (eq == std::string_view::npos || !ascii::equalsIgnoreCase(trim(param.substr(0, eq)), "rel"))
      continue;
    std::string_view value = trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    while (!value.empty()) {
      size_t space = value.find(' ');
      if (ascii::equalsIgnoreCase(value.substr(0, space), "alternate")) return true;
      value = space == std::string_view::npos ? std::string_view() : trim(value.substr(space));
    }
  }
  return false;
}

std::string resolve(const std::string& target, const std::string& base) {
  if (target.find("://") != std::string::npos || target.empty() || target[0] != '/') return target;
  size_t scheme = base.find("://");
  if (scheme == std::string::npos) return target;
  size_t path = base.find('/', scheme + 3);
  return base.substr(0, path) + target;
}

struct Search {
  std::string preferred;
  std::string defaultPem;
  std::vector<std::string> alternates;
  size_t next = 0;
  FetchChain fetch;
  ChainChosen chosen;
};

void tryNext(std::shared_ptr<Search> s) {
  if (s->next >= s->alternates.size()) {
    s->chosen(std::move(s->defaultPem), "no chain's topmost issuer is `" + s->preferred +
                                            "` (default: `" + topIssuerName(s->defaultPem) + "`, " +
                                            std::to_string(s->alternates.size()) +
                                            " alternate(s)): the default chain");
    return;
  }
  const std::string url = s->alternates[s->next++];
  s->fetch(url, [s, url](Result<std::string> pem) {
    if (pem && topIssuerName(*pem) == s->preferred) {
      s->chosen(std::move(*pem), "the alternate chain " + url + " (topmost issuer `" +
                                     s->preferred + "`, as acme.preferred_chain asks)");
      return;
    }
    tryNext(s);
  });
}

}  // namespace

std::vector<std::string> alternateChainUrls(const http::HttpResponse& response,
                                            const std::string& base) {
  std::vector<std::string> out;
  for (const auto& header : response.headers) {
    if (!ascii::equalsIgnoreCase(header.name, "Link")) continue;
    std::string_view rest = header.value;
    // link-value = "<" URI-Reference ">" *( ";" link-param ), comma separated.
    while (true) {
      size_t open = rest.find('<');
      if (open == std::string_view::npos) break;
      size_t close = rest.find('>', open);
      if (close == std::string_view::npos) break;
      std::string target(rest.substr(open + 1, close - open - 1));
      rest = rest.substr(close + 1);
      size_t nextLink = rest.find('<');
      std::string_view params = rest.substr(0, nextLink);
      while (!params.empty() && (params.back() == ',' || params.back() == ' ')) {
        params.remove_suffix(1);  // the separator before the next link
      }
      if (isAlternate(params)) out.push_back(resolve(target, base));
      if (nextLink == std::string_view::npos) break;
      rest = rest.substr(nextLink);
    }
  }
  return out;
}

std::string topIssuerName(const std::string& chainPem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(chainPem.data(), chainPem.size()));
  bssl::UniquePtr<X509> last;
  while (bssl::UniquePtr<X509> cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    last = std::move(cert);
  }
  if (!last) return {};
  X509_NAME* issuer = X509_get_issuer_name(last.get());
  int index = X509_NAME_get_index_by_NID(issuer, NID_commonName, -1);
  if (index < 0) return {};
  unsigned char* utf8 = nullptr;
  int len =
      ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(issuer, index)));
  if (len < 0) return {};
  std::string name(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return name;
}

void choosePreferredChain(const std::string& preferred, std::string defaultPem,
                          std::vector<std::string> alternates, FetchChain fetch,
                          ChainChosen chosen) {
  if (topIssuerName(defaultPem) == preferred) {
    chosen(std::move(defaultPem), "the default chain (topmost issuer `" + preferred + "`)");
    return;
  }
  auto search =
      std::make_shared<Search>(Search{preferred, std::move(defaultPem), std::move(alternates), 0,
                                      std::move(fetch), std::move(chosen)});
  tryNext(std::move(search));
}

}  // namespace tlsedge::acme
