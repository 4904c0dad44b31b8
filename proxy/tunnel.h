// Tunnel: after an origin's 101 (Switching Protocols), the raw bytes of the
// client's stream and the origin's stream relayed both ways, whatever the
// protocol inside (WebSocket, ...).
//
// It takes over both streams (it becomes their handler) and relays:
// - with backpressure: a side stops being read while the other side's write
//   queue is full (Stream::writeQueueFull) and is read again when that queue
//   has drained (onStreamDrained);
// - with half-close: when one peer finishes sending (EOF), the other stream's
//   write side is shut (close_notify + FIN once its queued bytes are out) and
//   the opposite direction goes on;
// - until both directions are done (then both streams close once flushed) or
//   either stream fails or closes (then the other closes once flushed).
//
// Thread: its worker's loop. Ownership: owned by the ClientConnection that
// asked for the upgrade (it stays the worker's registry object); the owner
// hears onTunnelClosed() once both streams have closed, and may delete the
// tunnel from there.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "net/stream.h"

namespace tlsedge::proxy {

class Tunnel {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // Both streams have closed. Last call; the owner may delete the tunnel.
    virtual void onTunnelClosed() = 0;
  };

  // Becomes the handler of both streams; nothing is relayed before start().
  // With no bytes either way for `idleTimeoutMs` (limits.tunnel_idle_timeout)
  // both streams are closed.
  Tunnel(net::Stream& client, net::Stream& origin, Owner& owner, uint64_t idleTimeoutMs);
  ~Tunnel();
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  // Starts relaying. `toOrigin`: what the client sent after its request head
  // (held until the 101); `toClient`: what the origin sent after its 101 head
  // (the caller has already written the 101 head itself). `clientEof`: the
  // client finished sending before the tunnel existed.
  void start(std::string_view toOrigin, std::string_view toClient, bool clientEof);

  // The worker is draining. The protocol inside is unknown, so there is no
  // graceful end to ask for: the tunnel runs until the drain's shutdown
  // timeout calls abort().
  void drain() {}
  // Closes both streams at once (pending writes dropped).
  void abort();

 private:
  // One stream of the tunnel; `peer` is the other.
  struct Side final : net::Stream::Handler {
    Side(Tunnel& t, const char* n) : tunnel(t), name(n) {}
    void onStreamData(const char* data, size_t size) override;
    void onStreamEof() override;
    void onStreamError(const std::string& reason) override;
    void onStreamDrained() override;
    void onStreamClosed() override;
    // Reads this stream unless its bytes could not be queued on the peer.
    void resumeReading();

    Tunnel& tunnel;
    const char* name;  // for logs
    net::Stream* stream = nullptr;
    Side* peer = nullptr;
    bool eof = false;  // this stream's peer finished sending
  };

  void bothDone();
  static void onIdleTimer(uv_timer_t* timer) noexcept;

  Owner& owner_;
  // Activity only stamps lastActivity_; the timer re-arms itself for the
  // remainder when it fires early, so relaying costs no timer operation.
  uv_timer_t* idleTimer_;  // deleted by its close callback
  uint64_t idleTimeoutMs_;
  uint64_t lastActivity_ = 0;
  Side client_{*this, "client"};
  Side origin_{*this, "origin"};
};

}  // namespace tlsedge::proxy
