// The collections of groups a state directory and the fleet's etcd share:
// certificate entries (certs/NAME) and the admin API's sites (sites/NAME).
// A replica (fleet/replica.h) copies each from etcd; `tlsedge fleet import`
// (fleet/import.h) copies each into it.
#pragma once

#include <string>

namespace tlsedge::fleet {

// The groups under `name`/ (PREFIX/`name`/ in etcd, <state_dir>/`name`/ on
// disk); a replica records the revision its copy reflects in
// <state_dir>/`record`.
struct Collection {
  std::string name;
  std::string record;
};
inline const Collection kCertificates{"certs", "fleet-copy.json"};
inline const Collection kSites{"sites", "fleet-copy-sites.json"};

}  // namespace tlsedge::fleet
