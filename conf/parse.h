// The section parsers: a YAML document -> Config fields, every problem to
// Diagnostics.
//
// Internal to conf/. parseConfig() reads `certificates` and `upstreams`
// before `tls` and `sites`, so that references can be checked while reading
// whatever order the file lists them in.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "conf/config.h"
#include "conf/diagnostics.h"
#include "conf/yaml_reader.h"

namespace tlsedge::conf {

struct ParseContext {
  Diagnostics& diag;
  std::string baseDir;  // absolute; relative paths resolve against it
  // Names declared under `certificates` / `upstreams`, including entries that
  // failed validation: a broken entry is reported once, not again at every
  // reference to it.
  std::set<std::string, std::less<>> certificateNames;
  std::set<std::string, std::less<>> upstreamNames;
  bool acmeDeclared = false;  // a top-level `acme:` section exists (valid or not)
  bool acmeDnsHook = false;   // ... and names a dns_hook or is `internal` (wildcards may use ACME)
};

// The whole document (parse_config.cc).
void parseConfig(ParseContext& ctx, const Field& root, Config& config);

// The `sites` list (parse_sites.cc).
void parseSites(ParseContext& ctx, const Field& sites, std::vector<Site>& out);

// Where a site name or host was first seen, to name both places in a
// duplicate message.
struct FirstUse {
  std::string site;
  std::string path;
};

// State shared by the sites of one configuration: names and hosts must be
// unique across them.
struct SitesState {
  std::map<std::string, FirstUse> siteNames;
  std::map<std::string, FirstUse> hosts;
};

// One site (an entry of `sites`, or a site given alone: conf/api_sites.h)
// appended to `out` if valid. `fixedName` non-empty: the site's name,
// `name` may be left out and must not differ.
void parseSite(ParseContext& ctx, SitesState& state, const Field& field, std::vector<Site>& out,
               const std::string& fixedName);

// The top-level `acme` section (parse_acme.cc).
void parseAcme(ParseContext& ctx, const Field& field, Config& config);
// Its `eab`, `preferred_chain` and `key_type` (parse_acme_options.cc); false
// when one is invalid.
bool parseAcmeOptions(ParseContext& ctx, const MapReader& map, Acme& acme);

// A list of networks ("10.0.0.0/8", "2001:db8::/32", one address) into
// `out`; each bad entry reported where it is (parse_config.cc).
void readNetworks(ParseContext& ctx, const Field& field, std::vector<IpNetwork>& out);

// `limits` and `access_log` (parse_limits.cc).
void parseLimits(ParseContext& ctx, const Field& field, Limits& limits);
void parseAccessLog(ParseContext& ctx, const Field& field, std::optional<AccessLog>& out);

// The top-level `storage` section: `etcd` (parse_storage.cc).
void parseStorage(ParseContext& ctx, const Field& field, Config& config);

// An upstream's options besides `servers` (parse_upstream.cc).
void parseUpstreamOptions(ParseContext& ctx, const MapReader& map, Upstream& upstream);

// "(defined: a, b)" or "(none are defined)", for unknown-reference messages.
std::string definedNames(const std::set<std::string, std::less<>>& names);

}  // namespace tlsedge::conf
