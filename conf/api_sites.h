// Sites managed at runtime (the admin API's /v1/sites): one site given
// alone, as YAML or JSON text (a JSON object is a YAML flow map), checked
// with the rules and messages of the YAML `sites:` list, and merged after
// the YAML sites of a Config.
//
// Positions in messages are those of the text given ("request body:1:34:
// hosts[1]: ..." for an admin API body, "<state>/sites/shop/site.json:1:34: ..."
// for a stored one), key paths relative to the site ("hosts[1]",
// "tls.certificate", "routes[0].upstream").
//
// Thread: any (pure functions over immutable inputs); the daemon calls them
// on the control loop.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "conf/config.h"

namespace tlsedge::conf {

// One site's text and where it comes from.
struct SiteText {
  std::string name;    // the site's name (from the API path or the file name)
  std::string source;  // what messages call the text: "request body", a file path
  std::string text;
};

// Parses each text as one site named `name` (a `name` key may be left out;
// one that differs is refused), with the rules of `sites:` against `base`:
// its upstreams, its `acme:` section and its certificates' names; site
// names and hosts unique among `base.sites` (but for the API sites whose
// names `texts` hold: they are being replaced) and the texts. Returns the
// sites, marked `api`, or every problem, one per line.
Result<std::vector<Site>> parseApiSites(const Config& base, const std::vector<SiteText>& texts);

// The sites of `texts` that fit `yaml` (a configuration with no API
// sites), each checked alone, in the order given (name order, as stored):
// one that does not parse, names a site or host taken (by the YAML or by
// an earlier text), or binds a certificate neither `certificates:` nor
// `storeCertificates` holds, is left out and the others are kept, so that
// every node with the same YAML and store keeps the same ones. For the
// fleet, whose sites are written through other nodes (admin/sites_api.h).
struct FittingSites {
  std::vector<Site> sites;  // marked `api`
  size_t refused = 0;       // texts left out
  std::string problems;     // why, one line or more each
};
FittingSites fittingApiSites(const Config& yaml, const std::vector<SiteText>& texts,
                             const std::set<std::string>& storeCertificates);

// A copy of `base` whose sites are its YAML sites followed by `api` (which
// parseApiSites accepted against it). O(config): the copy.
ConfigPtr withApiSites(const Config& base, std::vector<Site> api);

// Where a storage (certstore::Storage: the state directory, or etcd in
// fleet mode) keeps API site `name`: the group sites/NAME, holding
// site.json, the text as given. A group, as a certificate entry is, so
// that the fleet's replica copies sites as it copies certificates.
inline constexpr const char* kApiSitesKey = "sites";
inline constexpr const char* kApiSiteFile = "site.json";
inline std::string apiSiteGroup(const std::string& name) {
  return std::string(kApiSitesKey) + "/" + name;
}
inline std::string apiSiteKey(const std::string& name) {
  return apiSiteGroup(name) + "/" + kApiSiteFile;
}

// The API sites of `config` (copies).
std::vector<Site> apiSites(const Config& config);

}  // namespace tlsedge::conf
