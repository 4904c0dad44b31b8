#include "daemon/fleet_tickets.h"

#include <algorithm>
#include <string>

#include "base/log.h"

namespace tlsedge::daemon {

namespace {

constexpr int kAttempts = 3;  // compare-and-swap races lost before giving up
constexpr size_t kTimeBytes = 8;

// The stored value: the time of the last rotation (Unix seconds, 8 bytes
// big-endian), then the ring's bytes.
std::string encode(time_t rotatedAt, const tls::TicketKeyRing& ring) {
  std::string out(kTimeBytes, '\0');
  auto t = static_cast<uint64_t>(rotatedAt);
  for (size_t i = kTimeBytes; i-- > 0; t >>= 8) out[i] = static_cast<char>(t & 0xff);
  return out + ring.serialize();
}

struct Stored {
  time_t rotatedAt = 0;
  tls::TicketKeyRingPtr ring;
};

Result<Stored> decode(const std::string& value, uint32_t lifetime) {
  if (value.size() < kTimeBytes) return makeError("the fleet's ticket key ring is truncated");
  uint64_t t = 0;
  for (size_t i = 0; i < kTimeBytes; ++i) t = (t << 8) | static_cast<uint8_t>(value[i]);
  auto ring = tls::TicketKeyRing::parse(std::string_view(value).substr(kTimeBytes), lifetime);
  if (!ring) return ring.error();
  return Stored{static_cast<time_t>(t), std::move(*ring)};
}

}  // namespace

std::chrono::milliseconds fleetRefreshPeriod(std::chrono::milliseconds rotation) {
  return std::clamp<std::chrono::milliseconds>(rotation / 4, std::chrono::seconds(1),
                                               std::chrono::seconds(60));
}

Result<tls::TicketKeyRingPtr> syncFleetTicketRing(fleet::EtcdStorage& fleet, const conf::Tls& tls,
                                                  time_t now) {
  const uint32_t lifetime = tls::ticketLifetime(tls.ticketKeyRotation, tls.ticketKeysKept);
  const auto rotation =
      std::chrono::duration_cast<std::chrono::seconds>(tls.ticketKeyRotation).count();
  using Secrecy = certstore::Storage::Secrecy;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto held = fleet.loadVersioned(kFleetTicketRing);
    if (!held) return held.error();
    tls::TicketKeyRingPtr next;
    if (held->revision == 0) {
      next = tls::TicketKeyRing::generateFleet(lifetime);
    } else {
      auto stored = decode(held->value, lifetime);
      if (!stored) return stored.error();
      if (now - stored->rotatedAt < std::max<int64_t>(rotation, 1)) return stored->ring;
      next = stored->ring->advanced(static_cast<size_t>(tls.ticketKeysKept), lifetime);
    }
    auto written =
        fleet.storeIf(kFleetTicketRing, encode(now, *next), Secrecy::kSecret, held->revision);
    if (!written) return written.error();
    if (*written) {
      log::info(std::string("fleet: ticket keys ") + (held->revision == 0 ? "created" : "rotated") +
                " for the fleet");
      return next;
    }
    // Another node wrote first: read what it wrote.
  }
  return makeError("the fleet's ticket key ring kept changing under this node");
}

}  // namespace tlsedge::daemon
