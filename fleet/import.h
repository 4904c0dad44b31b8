// Moving a single node into a fleet: copies what a state directory's store
// holds into the fleet's etcd (`tlsedge fleet import`, docs/fleet.md).
//
// Copied: every certificate entry (certs/NAME, all its files), every site
// of the admin API (sites/NAME), and every ACME value (acme/...: accounts and their keys, per-site
// state, the local CA), but not acme/challenges (answers of orders under way). A file that others
// cannot read (0600: private keys, ACME state) is sealed with the fleet key, as a node writes it.
// What etcd holds already is left as it is and reported, unless `replace`: then it is written over
// (a group replaced whole). New keys go in batches, one txn each that commits only where none of
// its keys exists yet (a node writing meanwhile wins; that batch is then done one entry at a time
// and the entry reported).
//
// Thread: blocking (EtcdStorage): the CLI.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "fleet/etcd_storage.h"

namespace tlsedge::fleet {

struct ImportReport {
  size_t entries = 0;                 // certificate entries written
  size_t sites = 0;                   // admin API sites written
  size_t values = 0;                  // ACME values written
  std::vector<std::string> kept;      // storage keys etcd held already, left as they were
  std::vector<std::string> replaced;  // storage keys written over (`replace`)
};

// `progress` is told the number of entries, sites and values written so far after
// each batch.
Result<ImportReport> importStateDirectory(const std::string& stateDir, EtcdStorage& fleet,
                                          bool replace,
                                          const std::function<void(size_t)>& progress = {});

}  // namespace tlsedge::fleet
