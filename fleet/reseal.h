// Rotating the fleet key: every value in etcd sealed under another key than
// the key file's first is sealed again under it (`tlsedge fleet reseal`,
// docs/fleet.md "The fleet key").
//
// It reads everything under the fleet's prefix (paginated, at one
// revision) and writes the values to seal again in batches, one txn each
// that commits only where no value changed since it was read (a node that
// wrote one meanwhile sealed it under its own first key; that batch is then
// read and done again one value at a time). A value keeps its lease.
//
// Thread: blocking (EtcdStorage): the CLI.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "fleet/etcd_storage.h"

namespace tlsedge::fleet {

struct ResealReport {
  size_t resealed = 0;             // values sealed again under the first key
  size_t current = 0;              // values already sealed under it
  std::vector<std::string> moved;  // etcd keys that changed meanwhile, left as the writer made them
};

Result<ResealReport> resealFleet(const EtcdStorage& fleet);

}  // namespace tlsedge::fleet
