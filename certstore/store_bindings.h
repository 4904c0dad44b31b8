// StoreBindings: applies one state-directory store entry change to a
// certificate snapshot in O(that certificate + the site hosts it can affect),
// never O(store).
//
// Built once per config (start, SIGHUP) from the config and the snapshot
// Selector::build made from it (no file is read), it keeps what binding.h
// decides at build time so that a change can be replayed locally:
//   - the unbound site hosts (sites without tls.certificate), each with the
//     store certificates covering it and whether its site has a fallback;
//   - SAN key -> the unbound site hosts a certificate with that SAN can
//     cover: the exact host, and for a wildcard SAN `*.p` the hosts one
//     label under p and a site host `*.p` itself;
//   - certificate name -> the sites binding it by tls.certificate.
// apply(name, loaded) then does what a rebuild would do for that entry:
// withCertificate / withoutCertificate, re-binds the hosts of sites naming
// it (when it appears), and for each affected unbound host recomputes its
// best cover (newest valid, binding.h's order; else the site's fallback, via
// the Selector's fallback index; else tls.default_certificate) with
// withHost / withoutHost.
//
// A change a reload would refuse is refused and nothing changes (neither the
// snapshot nor this index): the previous certificate keeps serving. That is
// a removed entry that is tls.default_certificate, a site's fallback, or
// bound by a site without a fallback (a bound one whose site has a fallback
// is removed: the fallback serves, as after a reload); the last cover of a
// host with neither fallback nor default removed; and a store entry whose
// name `certificates:` defines too.
//
// Thread: control loop only.
#pragma once

#include <ctime>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "certstore/credentials.h"
#include "certstore/selector.h"
#include "conf/config.h"

namespace tlsedge::certstore {

class StoreBindings {
 public:
  StoreBindings() = default;
  // O(store x SANs + site hosts), once per config.
  static StoreBindings build(conf::ConfigPtr config, const Selector& snapshot);

  struct Applied {
    std::shared_ptr<const Selector> snapshot;  // `current` itself if nothing changed
    std::vector<std::string> hosts;            // site hosts now served differently
  };
  // Store entry `name` now holds `loaded` (null: the entry is gone), already
  // validated at `now`. Refusals say why and change nothing.
  Result<Applied> apply(const std::shared_ptr<const Selector>& current, const std::string& name,
                        CredentialsPtr loaded, time_t now);

  // The store entries in `snapshot` (for a rescan when the kernel names
  // none): O(store), rare. Nothing per store entry is kept here, only per
  // site host, so the index costs memory in the config's size.
  std::vector<std::string> storeNames(const Selector& snapshot) const;
  // The store certificates covering an unbound site host (tests).
  std::set<std::string> covers(const std::string& host) const;

 private:
  struct Unbound {
    const conf::Site* site = nullptr;
    std::set<std::string> covers;  // store certificate names
  };
  // Which of `current`'s credentials `host` should get, given `covers`: ""
  // for the site's fallback (unbound in the host index).
  Result<std::string> best(const Selector& snapshot, const std::string& host,
                           const Unbound& unbound, const std::set<std::string>& covers,
                           time_t now) const;
  // Why `name` cannot leave the snapshot ("" if it can).
  std::string inUse(const std::string& name) const;

  conf::ConfigPtr config_;
  std::unordered_map<std::string, Unbound> unbound_;                         // site host ->
  std::unordered_map<std::string, std::vector<std::string>> bySan_;          // SAN -> hosts
  std::unordered_map<std::string, std::vector<const conf::Site*>> boundBy_;  // name -> sites
};

}  // namespace tlsedge::certstore
