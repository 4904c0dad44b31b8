// OrderLocks: which node of a fleet orders a site's certificate, so that N
// nodes with the same `acme: true` site place one order (daemon/fleet_acme.h
// keeps them in etcd). A single node has none: it orders every site itself.
//
// The manager takes a site's lock before it orders, then reads the site's
// saved state and certificate again (a peer may have renewed meanwhile: no
// order then), orders, and writes the certificate and the state through the
// lock's storage, which refuses every write once the lock is lost (the
// fencing check: a node whose lock expired never overwrites the work of
// the node that took over). A site whose lock another node holds is checked
// again later; the holder's certificate reaches every node through the
// fleet's replica.
//
// Thread: the control loop.
#pragma once

#include <functional>
#include <string>

#include "base/result.h"
#include "certstore/storage.h"

namespace tlsedge::acme {

class OrderLocks {
 public:
  struct Lock {
    bool ours = false;
    std::string holder;             // the node that holds it ("" none)
    certstore::StoragePtr storage;  // ours: writes that commit only while it holds
  };
  using Taken = std::function<void(Result<Lock>)>;

  virtual ~OrderLocks() = default;
  // This node's name in the fleet.
  virtual const std::string& node() const = 0;
  // Takes `site`'s lock for this node, or says who holds it; `done` runs on
  // the control loop, never inside acquire().
  virtual void acquire(const std::string& site, Taken done) = 0;
  // Lets `site`'s lock go, if this node holds it (not awaited).
  virtual void release(const std::string& site) = 0;
};

}  // namespace tlsedge::acme
