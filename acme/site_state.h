// acme::SavedSite: the part of a site's ACME state that must survive a
// restart, in <state>/acme/sites/<site>.json (0600, written atomically:
// temp, fsync, rename, fsync of the directory):
//  - the pending order's URL, so that a restart resumes it (the client
//    polls it: pending or ready goes on, anything else is ordered anew)
//    instead of placing a second order;
//  - the failure count, the last error and the time before which no
//    automatic order is placed, so that a restart does not hammer the CA.
// It is bound to the CA directory, the `acme:` settings (a digest: account
// email, EAB, roots, challenge, DNS hook; not the pre-flight's, which are
// each node's own in a fleet) and the site's host list it
// was written for: state written under others is ignored (and replaced), as
// a settings change while running resets the backoff: an operator who fixed
// the account's settings gets an attempt at once.
//
// Thread: any (blocking storage calls: the manager makes them on its lane).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "certstore/storage.h"

namespace tlsedge::acme {

struct SavedSite {
  std::string directory;  // the CA's directory URL
  std::string settings;   // digest of the acme: settings (no secret in clear)
  std::vector<std::string> hosts;
  std::string orderUrl;  // the order in progress; empty: none
  int failures = 0;      // consecutive
  std::string lastError;
  time_t lastErrorAt = 0;
  int64_t retryDelaySeconds = 0;
  time_t backoffUntil = 0;    // no automatic order before; 0: none
  std::string revokedSerial;  // the stored certificate was revoked: order anew

  bool operator==(const SavedSite&) const = default;
};

// The storage key of `site`'s state: acme/sites/SITE.json (mode 0600 in
// the state directory).
std::string savedSiteKey(const std::string& site);

// nullopt when there is none; an Error when it does not parse (named).
Result<std::optional<SavedSite>> loadSavedSite(const certstore::Storage& storage,
                                               const std::string& site);
Status saveSite(certstore::Storage& storage, const std::string& site, const SavedSite& saved);

}  // namespace tlsedge::acme
