#include "admin/sites_api.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "base/log.h"
#include "certstore/file_storage.h"
#include "certstore/json.h"
#include "conf/api_sites.h"

namespace tlsedge::admin {
namespace {

constexpr std::string_view kSites = "/v1/sites";

AdminResponse answer(int status, std::string body, bool text = false) {
  AdminResponse r;
  r.status = status;
  if (text) r.contentType = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

AdminResponse notAllowed(const char* allow) {
  AdminResponse r = adminError(405, std::string("method not allowed; allowed: ") + allow);
  r.allow = allow;
  return r;
}

const conf::Site* findSite(const conf::Config& config, const std::string& name) {
  for (const conf::Site& site : config.sites) {
    if (site.name == name) return &site;
  }
  return nullptr;
}

nlohmann::ordered_json toJson(const conf::Site& site, bool withSource) {
  nlohmann::ordered_json j;
  j["name"] = site.name;
  if (withSource) j["source"] = site.api ? "api" : "config";
  j["hosts"] = site.hosts;
  nlohmann::ordered_json tls = nlohmann::ordered_json::object();
  if (site.certificates.size() == 1) tls["certificate"] = site.certificates.front();
  if (site.certificates.size() > 1) tls["certificate"] = site.certificates;
  if (!site.fallbackCertificate.empty()) tls["fallback_certificate"] = site.fallbackCertificate;
  if (site.acme) tls["acme"] = true;
  if (!tls.empty()) j["tls"] = tls;
  j["redirect_https"] = site.redirectHttps;
  j["redirect_status"] = site.redirectStatus;
  if (site.hsts) {
    j["hsts"] = {{"max_age", site.hsts->maxAge},
                 {"include_subdomains", site.hsts->includeSubdomains},
                 {"preload", site.hsts->preload}};
  }
  nlohmann::ordered_json routes = nlohmann::ordered_json::array();
  for (const conf::Route& route : site.routes) {
    nlohmann::ordered_json r{{"path", route.pathPrefix}};
    if (route.respond) {
      r["respond"] = {{"status", route.respond->status},
                      {"body", route.respond->body},
                      {"content_type", route.respond->contentType}};
    } else {
      r["upstream"] = route.upstream;
    }
    routes.push_back(std::move(r));
  }
  j["routes"] = std::move(routes);
  j["upgrades"] = site.upgrades;
  return j;
}

// Every site, as JSON or one line each (NAME SOURCE HOSTS).
AdminResponse list(const conf::Config& config, bool text) {
  if (text) {
    std::string out;
    for (const conf::Site& site : config.sites) {
      out += site.name + (site.api ? "  api     " : "  config  ");
      for (size_t i = 0; i < site.hosts.size(); ++i) out += (i ? "," : "") + site.hosts[i];
      out += "\n";
    }
    return answer(200, std::move(out), true);
  }
  nlohmann::ordered_json sites = nlohmann::ordered_json::array();
  for (const conf::Site& site : config.sites) sites.push_back(toJson(site, true));
  return answer(200, certstore::jsonText(sites));
}

// The API sites of `config` with `site` added or replaced (null: `name`
// removed), as a configuration.
conf::ConfigPtr nextConfig(const conf::Config& config, const std::string& name,
                           const conf::Site* site) {
  std::vector<conf::Site> api;
  bool placed = false;
  for (const conf::Site& s : config.sites) {
    if (!s.api) continue;
    if (s.name != name) {
      api.push_back(s);
    } else if (site != nullptr) {
      api.push_back(*site);  // replaced in place: the order of sites stays
      placed = true;
    }
  }
  if (site != nullptr && !placed) api.push_back(*site);
  return conf::withApiSites(config, std::move(api));
}

// Keeps `body` as the site group `group` (conf::apiSiteGroup).
Status keep(certstore::Storage& store, const std::string& group, const std::string& body) {
  auto stored = store.storeGroup(
      group, {{conf::kApiSiteFile, body, certstore::Storage::Secrecy::kPublic}}, true);
  if (!stored) return stored.error();
  return Ok{};
}

// Whether `a` and `b` hold the same sites, in any order.
bool sameSites(const std::vector<conf::Site>& a, const std::vector<conf::Site>& b) {
  if (a.size() != b.size()) return false;
  std::map<std::string, std::string> texts;
  for (const conf::Site& site : a) texts[site.name] = siteJson(site, false);
  for (const conf::Site& site : b) {
    auto it = texts.find(site.name);
    if (it == texts.end() || it->second != siteJson(site, false)) return false;
  }
  return true;
}

}  // namespace

std::string siteJson(const conf::Site& site, bool withSource, int indent) {
  return certstore::jsonText(toJson(site, withSource), indent);
}

bool SitesApi::owns(std::string_view path) {
  return path == kSites || (path.starts_with(kSites) && path[kSites.size()] == '/');
}

certstore::StoragePtr SitesApi::storage(const conf::Config& config) const {
  if (hooks_.storage) return hooks_.storage();
  return certstore::FileStorage::open(config.stateDir);
}

void SitesApi::handle(const AdminRequest& request, AdminApi::Reply reply) {
  const std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string& method = request.method;
  if (path == kSites || path == std::string(kSites) + "/") {
    if (method != "GET") return reply(notAllowed("GET"));
    // O(sites): off the control loop, over the immutable configuration.
    return hooks_.offload(
        [config = hooks_.config(), text = request.text] { return list(*config, text); },
        std::move(reply));
  }
  auto name = percentDecode(path.substr(kSites.size() + 1));
  if (!name.ok()) return reply(adminError(400, name.error().message));
  if (name->empty() || name->find('/') != std::string::npos) {
    return reply(adminError(404, "no such path"));
  }
  if (method == "GET") {
    const conf::ConfigPtr config = hooks_.config();
    const conf::Site* site = findSite(*config, *name);
    if (site == nullptr) return reply(adminError(404, "no site named `" + *name + "`"));
    if (request.text) return reply(answer(200, siteJson(*site, false, 2) + "\n", true));
    return reply(answer(200, siteJson(*site, true)));
  }
  if (method != "PUT" && method != "DELETE") return reply(notAllowed("GET, PUT, DELETE"));
  queue_.push_back(Change{request, *name, std::move(reply)});
  if (!busy_) next();
}

void SitesApi::next() {
  if (queue_.empty()) return;
  busy_ = true;
  Change c = std::move(queue_.front());
  queue_.pop_front();
  if (c.resync) {
    resyncQueued_ = false;  // changes from now on are read by another
    resyncRunning_ = true;
  }
  change(std::move(c));
}

void SitesApi::finish(Change& c, AdminResponse r) {
  if (c.resync) resyncRunning_ = false;
  c.reply(std::move(r));
  busy_ = false;
  next();
}

void SitesApi::change(Change c) { attempt(std::make_shared<Change>(std::move(c))); }

void SitesApi::storedChanged() {
  if (resyncQueued_) return;
  resyncQueued_ = true;
  Change c;
  c.resync = true;
  c.reply = [](AdminResponse) {};
  queue_.push_back(std::move(c));
  if (!busy_) next();
}

void SitesApi::commitPrepared(const std::shared_ptr<Change>& c, const Prepared& prepared,
                              std::function<void()> again, std::function<void(Status)> served) {
  hooks_.commit(prepared, [c, again = std::move(again), served = std::move(served)](Status s) {
    if (!s && s.error().kind == ErrorKind::kConflict && ++c->attempts < 3) return again();
    served(std::move(s));
  });
}

void SitesApi::resync(const std::shared_ptr<Change>& c) {
  const conf::ConfigPtr config = hooks_.config();
  auto prepared = std::make_shared<Prepared>();
  struct Read {
    size_t stored = 0;   // sites the state directory holds
    size_t refused = 0;  // of them, left out
    std::string problems;
  };
  auto read = std::make_shared<Read>();
  const std::string where = config->stateDir + "/" + conf::kApiSitesKey;
  AdminApi::Work work = [build = hooks_.prepare(), config, prepared, read] {
    const conf::ConfigPtr yaml = conf::withApiSites(*config, {});
    auto fit = fittingStoredSites(*yaml);
    if (!fit) {
      read->problems = fit.error().message;
      return adminError(500, fit.error().message);
    }
    read->stored = fit->sites.size() + fit->refused;
    read->refused = fit->refused;
    read->problems = fit->problems;
    if (sameSites(fit->sites, conf::apiSites(*config))) return answer(204, "");
    auto built = build(conf::withApiSites(*yaml, std::move(fit->sites)));
    if (!built) {  // all of them, then (a certificate file unreadable, ...)
      read->refused = read->stored;
      read->problems = built.error().message;
      return adminError(422, built.error().message);
    }
    *prepared = std::move(*built);
    return AdminResponse{};
  };
  // What was left out, logged when it changes (each reading would repeat it).
  auto report = [this, read, where](bool served) {
    storedRefused_ = read->refused;
    if (read->problems == storedProblems_ && !served) return;
    storedProblems_ = read->problems;
    if (served) {
      log::info("sites: serving the " + std::to_string(read->stored - read->refused) + " of " +
                std::to_string(read->stored) + " that " + where + " holds");
    }
    if (read->refused > 0) {
      log::error("sites: " + std::to_string(read->refused) + " of those " + where +
                 " holds are not served (the others are): " + read->problems);
    }
  };
  hooks_.offload(std::move(work), [this, c, config, prepared, read, report](AdminResponse r) {
    if (r.status == 204) {  // the sites that run already
      report(false);
      return finish(*c, std::move(r));
    }
    if (r.status != 200) {
      read->refused = std::max<size_t>(read->refused, 1);
      report(false);
      return finish(*c, std::move(r));
    }
    if (hooks_.config() != config) return attempt(c);  // a reload meanwhile: read again
    commitPrepared(
        c, *prepared, [this, c] { attempt(c); },
        [this, c, read, report](Status served) {
          if (!served) {
            read->refused = read->stored;  // none of the new set: what runs stays
            read->problems = served.error().message;
          }
          report(served.ok());
          finish(*c, AdminResponse{});
        });
  });
}

void SitesApi::attempt(const std::shared_ptr<Change>& c) {
  if (c->resync) return resync(c);
  const conf::ConfigPtr config = hooks_.config();
  const std::string& name = c->name;
  const conf::Site* existing = findSite(*config, name);
  if (existing != nullptr && !existing->api) {
    return finish(*c, adminError(409, "site `" + name + "` is defined in " + config->sourceName +
                                          ": sites of the configuration file are read-only "
                                          "through the API (change it there and reload)"));
  }
  const bool remove = c->request.method == "DELETE";
  // Checked, built and kept off the loop (each O(sites), the build also
  // O(store)), over the configuration running now; what the key held
  // before, for an undo.
  auto site = std::make_shared<std::optional<conf::Site>>();
  auto prepared = std::make_shared<Prepared>();
  auto before = std::make_shared<std::optional<std::string>>();
  certstore::StoragePtr store = storage(*config);
  const std::string key = conf::apiSiteGroup(name);
  AdminApi::Work work = [build = hooks_.prepare(), config, site, prepared, store, key, before,
                         remove, name, body = c->request.body, running = existing != nullptr] {
    if (remove && !running) {
      // Not served here, but perhaps kept: a fleet site this node left
      // out (conf::fittingApiSites) is removed as any other.
      auto there = store->exists(key);
      if (!there) return adminError(500, "cannot read the sites: " + there.error().message);
      if (!*there) return adminError(404, "no site named `" + name + "`");
    }
    if (!remove) {
      auto parsed = conf::parseApiSites(*config, {{name, "request body", body}});
      if (!parsed) return adminError(parsed.error());
      *site = std::move(parsed->front());
    }
    auto built = build(nextConfig(*config, name, *site ? &**site : nullptr));
    if (!built) return adminError(422, built.error().message);
    *prepared = std::move(*built);
    if (auto old = store->load(conf::apiSiteKey(name)); old) *before = std::move(*old);
    Status written = remove ? store->remove(key) : keep(*store, key, body);
    if (!written && !(remove && written.error().kind == ErrorKind::kNotFound)) {
      return adminError(500, "cannot keep the site: " + written.error().message);
    }
    return AdminResponse{};
  };
  hooks_.offload(std::move(work), [this, c, config, prepared, site, store, key, before,
                                   existing = existing != nullptr](AdminResponse r) {
    if (r.status != 200) return finish(*c, std::move(r));
    if (hooks_.config() != config) {
      // A reload while it was built: undone, then built again on what runs
      // now (checked again against it).
      return restore(store, key, before, [this, c] { attempt(c); });
    }
    auto again = [this, c, store, key, before] {
      restore(store, key, before, [this, c] { attempt(c); });  // built again
    };
    commitPrepared(
        c, *prepared, again, [this, c, site, store, key, before, existing](Status served) {
          if (!served) {
            return restore(store, key, before, [this, c, error = served.error()] {
              finish(*c, error.kind == ErrorKind::kConflict ? adminError(503, error.message)
                                                            : adminError(422, error.message));
            });
          }
          if (!*site) {
            log::info("admin: site " + c->name + " removed");
            return finish(
                *c, answer(200, certstore::jsonText(nlohmann::ordered_json{{"removed", c->name}})));
          }
          log::info("admin: site " + c->name + (existing ? " replaced" : " created"));
          finish(*c, answer(existing ? 200 : 201, siteJson(**site, true)));
        });
  });
}

void SitesApi::restore(const certstore::StoragePtr& store, const std::string& key,
                       const std::shared_ptr<std::optional<std::string>>& before,
                       std::function<void()> then) {
  hooks_.offload(
      [store, key, before] {
        if (*before) {
          (void)keep(*store, key, **before);
        } else {
          (void)store->remove(key);
        }
        return AdminResponse{};
      },
      [then = std::move(then)](AdminResponse) { then(); });
}

Result<std::vector<conf::SiteText>> storedSiteTexts(const certstore::Storage& store) {
  auto names = store.list(conf::kApiSitesKey);
  if (!names) return names.error();
  std::vector<conf::SiteText> texts;
  for (const std::string& name : *names) {
    const std::string key = conf::apiSiteKey(name);
    auto text = store.load(key);
    if (!text && text.error().kind == ErrorKind::kNotFound) continue;  // not a site's group
    if (!text) return text.error();
    texts.push_back({name, store.describe(key), std::move(*text)});
  }
  return texts;
}

Result<conf::FittingSites> fittingStoredSites(const conf::Config& yaml) {
  auto store = certstore::FileStorage::open(yaml.stateDir);
  auto texts = storedSiteTexts(*store);
  if (!texts) return texts.error();
  std::set<std::string> certificates;
  auto names = store->list("certs");
  if (names) {
    certificates.insert(names->begin(), names->end());
  } else if (names.error().kind != ErrorKind::kNotFound) {
    return names.error();
  }
  return conf::fittingApiSites(yaml, *texts, certificates);
}

Result<conf::ConfigPtr> withStoredSites(const conf::ConfigPtr& config) {
  auto texts = storedSiteTexts(*certstore::FileStorage::open(config->stateDir));
  if (!texts) return texts.error();
  if (texts->empty()) return config;
  auto sites = conf::parseApiSites(*config, *texts);
  if (!sites) return sites.error();
  return conf::withApiSites(*config, std::move(*sites));
}

}  // namespace tlsedge::admin
