#include "conf/api_sites.h"

#include <set>
#include <utility>

#include "conf/diagnostics.h"
#include "conf/parse.h"
#include "conf/yaml_reader.h"

namespace tlsedge::conf {
namespace {

// The context the YAML `sites:` list is read in: what `base` declares.
ParseContext contextOf(Diagnostics& diag, const Config& base) {
  ParseContext ctx{diag, "/", {}, {}};
  for (const CertificateFiles& c : base.certificates) ctx.certificateNames.insert(c.name);
  for (const Upstream& u : base.upstreams) ctx.upstreamNames.insert(u.name);
  ctx.acmeDeclared = base.acme.has_value();
  ctx.acmeDnsHook = base.acme && (base.acme->internal || !base.acme->dnsHook.empty());
  return ctx;
}

// The names and hosts of `base`'s sites, where messages say they are: the
// YAML's key paths, or the API site's name.
SitesState stateOf(const Config& base, const std::vector<SiteText>& texts) {
  SitesState state;
  size_t yamlIndex = 0;
  for (const Site& site : base.sites) {
    std::string where;
    if (site.api) {
      bool replaced = false;
      for (const SiteText& t : texts) replaced = replaced || t.name == site.name;
      if (replaced) continue;
      where = "the admin API's site `" + site.name + "`";
    } else {
      where = base.sourceName + " " + indexPath("sites", yamlIndex++);
    }
    state.siteNames.emplace(site.name, FirstUse{site.name, where});
    for (size_t i = 0; i < site.hosts.size(); ++i) {
      state.hosts.emplace(site.hosts[i], FirstUse{site.name, where + (site.api ? " " : ".") +
                                                                 indexPath("hosts", i)});
    }
  }
  return state;
}

// Parses `t` as one site into `out` (when valid) against `state`, with
// `diag` the problems.
void parseOne(const Config& base, SitesState& state, const SiteText& t, std::vector<Site>& out,
              Diagnostics& diag) {
  const YamlParse parsed = parseYaml(t.text);
  if (parsed.syntaxError) {
    diag.report(parsed.syntaxError->first, "", "syntax error: " + parsed.syntaxError->second);
  } else if (parsed.secondDocument) {
    diag.report(*parsed.secondDocument, "", "a second document; a site is a single one");
  } else {
    ParseContext ctx = contextOf(diag, base);
    const YamlNode root = parsed.root;
    parseSite(ctx, state, Field{root, "", root.position(Position{})}, out, t.name);
  }
}

// The certificate names `site` binds that `known` does not hold.
std::string unknownCertificates(const Site& site, const std::set<std::string>& known) {
  std::string missing;
  auto check = [&](const std::string& name) {
    if (!name.empty() && known.count(name) == 0) {
      missing += (missing.empty() ? "`" : ", `") + name + "`";
    }
  };
  for (const std::string& name : site.certificates) check(name);
  check(site.fallbackCertificate);
  return missing;
}

}  // namespace

Result<std::vector<Site>> parseApiSites(const Config& base, const std::vector<SiteText>& texts) {
  SitesState state = stateOf(base, texts);
  std::vector<Site> out;
  std::string problems;
  for (const SiteText& t : texts) {
    Diagnostics diag(t.source);
    parseOne(base, state, t, out, diag);
    if (!diag.empty()) problems += (problems.empty() ? "" : "\n") + diag.text();
  }
  if (!problems.empty()) return makeError(problems, ErrorKind::kInvalid);
  for (Site& site : out) site.api = true;
  return out;
}

FittingSites fittingApiSites(const Config& yaml, const std::vector<SiteText>& texts,
                             const std::set<std::string>& storeCertificates) {
  SitesState state = stateOf(yaml, {});
  std::set<std::string> known = storeCertificates;
  for (const CertificateFiles& c : yaml.certificates) known.insert(c.name);
  FittingSites fit;
  for (const SiteText& t : texts) {
    if (auto taken = state.siteNames.find(t.name); taken != state.siteNames.end()) {
      ++fit.refused;  // a YAML site's name: nothing of it parsed (nor freed below)
      fit.problems += (fit.problems.empty() ? "" : "\n") + t.source + ": site `" + t.name +
                      "` is defined at " + taken->second.path;
      continue;
    }
    Diagnostics diag(t.source);
    const size_t before = fit.sites.size();
    parseOne(yaml, state, t, fit.sites, diag);
    std::string problem = diag.empty() ? "" : diag.text();
    if (problem.empty() && fit.sites.size() > before) {
      const std::string missing = unknownCertificates(fit.sites.back(), known);
      if (!missing.empty()) {
        problem = t.source + ": tls: no certificate named " + missing +
                  " in `certificates:` or in the store";
      }
    }
    if (problem.empty()) continue;
    // Left out: what it claimed (its name, its hosts) is free again.
    fit.sites.resize(before);
    std::erase_if(state.siteNames, [&](const auto& entry) { return entry.second.site == t.name; });
    std::erase_if(state.hosts, [&](const auto& entry) { return entry.second.site == t.name; });
    ++fit.refused;
    fit.problems += (fit.problems.empty() ? "" : "\n") + problem;
  }
  for (Site& site : fit.sites) site.api = true;
  return fit;
}

ConfigPtr withApiSites(const Config& base, std::vector<Site> api) {
  auto config = std::make_shared<Config>(base);
  std::erase_if(config->sites, [](const Site& site) { return site.api; });
  config->sites.reserve(config->sites.size() + api.size());
  for (Site& site : api) {
    site.api = true;
    config->sites.push_back(std::move(site));
  }
  return config;
}

std::vector<Site> apiSites(const Config& config) {
  std::vector<Site> out;
  for (const Site& site : config.sites) {
    if (site.api) out.push_back(site);
  }
  return out;
}

}  // namespace tlsedge::conf
