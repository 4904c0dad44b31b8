// Fleet mode's session ticket keys: one ring for the whole fleet, so that a
// client resumes on any node. The ring lives in etcd at
// PREFIX/tickets/ring, sealed with the fleet key (etcd never holds a ticket
// key in the clear); nodes hold it in memory only, never on disk.
//
// Every node reads it every fleetRefreshPeriod. Rotation needs no leader:
// a node that finds the ring's current key older than tls.ticket_key_rotation
// writes the advanced ring with a compare-and-swap on its revision, so one
// node rotates per period and the others read what it wrote. The ring
// carries a pending key (tls::TicketKeyRing::generateFleet): a rotation only
// promotes a key every node has held for a period already, so a node that
// has not read the rotation yet still accepts the new tickets.
//
// Thread: syncFleetTicketRing blocks (etcd): libuv's thread pool.
#pragma once

#include <chrono>
#include <ctime>

#include "base/result.h"
#include "conf/config.h"
#include "fleet/etcd_storage.h"
#include "tls/ticket_keys.h"

namespace tlsedge::daemon {

inline constexpr const char* kFleetTicketRing = "tickets/ring";

// How often a node reads the fleet's ring: a quarter of the rotation,
// between 1 s and 60 s.
std::chrono::milliseconds fleetRefreshPeriod(std::chrono::milliseconds rotation);

// Reads the fleet's ring, creating it when there is none and advancing it
// when it is due (both compare-and-swap; a lost race reads the winner's).
// Returns the ring every node should hold now. Errors: etcd unreachable, a
// ring that does not open under the fleet key.
Result<tls::TicketKeyRingPtr> syncFleetTicketRing(fleet::EtcdStorage& fleet, const conf::Tls& tls,
                                                  time_t now);

}  // namespace tlsedge::daemon
