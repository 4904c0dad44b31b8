#include "proxy/upstream/pool.h"

#include <limits>

#include "base/log.h"
#include "net/loop.h"
#include "proxy/upstream/exchange.h"

namespace tlsedge::proxy {

UpstreamPool::~UpstreamPool() = default;

UpstreamState* UpstreamPool::acquire(const UpstreamSetup& setup) {
  const conf::Upstream& upstream = *setup.config;
  auto it = states_.find(setup.stateKey);
  if (it == states_.end()) {
    dropUnused();  // a new key means a reload changed something: forget what nothing uses
    auto state = std::make_unique<UpstreamState>();
    state->key = setup.stateKey;
    state->slots.resize(upstream.servers.size());
    state->servers.resize(upstream.servers.size());
    it = states_.emplace(setup.stateKey, std::move(state)).first;
  }
  UpstreamState* state = it->second.get();
  ++state->users;
  state->lastUsed = now();
  state->keepMs = static_cast<uint64_t>(upstream.failTimeout.count());
  return state;
}

// States of upstreams that were reloaded away (or have had no traffic for
// longer than their fail_timeout, so hold nothing worth keeping).
void UpstreamPool::dropUnused() {
  const uint64_t t = now();
  std::erase_if(states_, [t](const auto& entry) {
    const UpstreamState& s = *entry.second;
    return s.users == 0 && t - s.lastUsed >= s.keepMs;
  });
}

size_t UpstreamPool::pick(UpstreamState& state, const conf::Upstream& upstream,
                          const TriedServers& tried) {
  const uint64_t t = now();
  size_t server = pickServer(state.slots, upstream.balance, &state.cursor, t, tried);
  if (server != kNoServer && state.slots[server].health.noticeReturn(t)) {
    log::info("upstream " + upstream.name + ": server " + upstream.servers[server].text +
              " back in rotation on this worker (fail_timeout elapsed)");
  }
  return server;
}

void UpstreamPool::recordFailure(UpstreamState& state, size_t server,
                                 const conf::Upstream& upstream, const std::string& reason) {
  const uint64_t failTimeout = static_cast<uint64_t>(upstream.failTimeout.count());
  if (state.slots[server].health.recordFailure(now(), upstream.maxFails, failTimeout)) {
    log::warning("upstream " + upstream.name + ": server " + upstream.servers[server].text +
                 " out of rotation on this worker for " + std::to_string(failTimeout) +
                 " ms after " + std::to_string(upstream.maxFails) +
                 " failed attempt(s) (last: " + reason + ")");
  }
}

UpstreamConnection* UpstreamPool::takeIdle(UpstreamState& state, size_t server, uint64_t owner) {
  IdleList& list = state.servers[server].idle;
  UpstreamConnection* c = list.newest;
  while (c != nullptr) {
    UpstreamConnection* older = c->idlePrev_;
    if (c->owner_ == owner) {  // private ones (send_proxy_protocol) stay with their client
      unlink(c);
      if (!c->stream_->closing()) {  // a closing one goes when its close completes
        ++stats_.upstreamConnectionsReused;
        return c;
      }
    }
    c = older;
  }
  return nullptr;
}

void UpstreamPool::putIdle(UpstreamConnection* c, const conf::Upstream& upstream) {
  if (draining_ || upstream.keepalive == 0) {
    c->stream_->close();
    return;
  }
  IdleList& list = c->state_.servers[c->server_].idle;
  if (list.size >= upstream.keepalive) {
    UpstreamConnection* oldest = list.oldest;
    unlink(oldest);
    oldest->stream_->close();
  }
  const uint64_t idleMs = static_cast<uint64_t>(upstream.idleTimeout.count());
  c->idle_ = true;
  c->idleDeadline_ = now() + idleMs;
  c->idlePrev_ = list.newest;
  c->idleNext_ = nullptr;
  if (list.newest != nullptr) {
    list.newest->idleNext_ = c;
  } else {
    list.oldest = c;
  }
  list.newest = c;
  ++list.size;
  if (c->owner_ != 0) {
    UpstreamConnection*& head = ownedIdle_[c->owner_];
    c->ownerPrev_ = nullptr;
    c->ownerNext_ = head;
    if (head != nullptr) head->ownerPrev_ = c;
    head = c;
  }
  c->stream_->startReading();  // to notice the origin closing it

  if (idleTimer_ == nullptr) {
    idleTimer_ = new uv_timer_t;
    uv_timer_init(loop_, idleTimer_);
    idleTimer_->data = this;
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(idleTimer_)) ||
      uv_timer_get_due_in(idleTimer_) > idleMs) {
    uv_timer_start(idleTimer_, &UpstreamPool::onIdleTimer, idleMs, 0);
  }
}

void UpstreamPool::onIdleTimer(uv_timer_t* timer) noexcept {
  static_cast<UpstreamPool*>(timer->data)->expireIdle();
}

// Closes the idle connections whose idle_timeout ran out and re-arms for the
// next one. Lists are in the order connections went idle, so each is
// scanned only from its oldest end. (A reload that changes idle_timeout but
// nothing of the state key may make a list slightly out of order; its
// connections then close a little late or early, never leak.)
void UpstreamPool::expireIdle() {
  const uint64_t t = now();
  uint64_t next = std::numeric_limits<uint64_t>::max();
  for (auto& [key, state] : states_) {
    for (ServerConnections& server : state->servers) {
      while (UpstreamConnection* c = server.idle.oldest) {
        if (c->idleDeadline_ > t) {
          next = std::min(next, c->idleDeadline_);
          break;
        }
        unlink(c);
        c->stream_->close();
      }
    }
  }
  if (next != std::numeric_limits<uint64_t>::max()) {
    uv_timer_start(idleTimer_, &UpstreamPool::onIdleTimer, next - t, 0);
  }
}

void UpstreamPool::unlink(UpstreamConnection* c) {
  if (!c->idle_) return;
  IdleList& list = c->state_.servers[c->server_].idle;
  if (c->idlePrev_ != nullptr) {
    c->idlePrev_->idleNext_ = c->idleNext_;
  } else {
    list.oldest = c->idleNext_;
  }
  if (c->idleNext_ != nullptr) {
    c->idleNext_->idlePrev_ = c->idlePrev_;
  } else {
    list.newest = c->idlePrev_;
  }
  c->idlePrev_ = c->idleNext_ = nullptr;
  c->idle_ = false;
  --list.size;
  if (c->owner_ != 0) {
    if (c->ownerPrev_ != nullptr) {
      c->ownerPrev_->ownerNext_ = c->ownerNext_;
    } else if (c->ownerNext_ != nullptr) {
      ownedIdle_[c->owner_] = c->ownerNext_;
    } else {
      ownedIdle_.erase(c->owner_);
    }
    if (c->ownerNext_ != nullptr) c->ownerNext_->ownerPrev_ = c->ownerPrev_;
    c->ownerPrev_ = c->ownerNext_ = nullptr;
  }
}

void UpstreamPool::closeOwned(uint64_t owner) {
  for (auto it = ownedIdle_.find(owner); it != ownedIdle_.end(); it = ownedIdle_.find(owner)) {
    UpstreamConnection* c = it->second;
    unlink(c);
    c->stream_->close();
  }
}

void UpstreamPool::forget(UpstreamConnection* connection) { unlink(connection); }

void UpstreamPool::closeIdle() {
  draining_ = true;
  for (auto& [key, state] : states_) {
    for (ServerConnections& server : state->servers) {
      while (UpstreamConnection* c = server.idle.oldest) {
        unlink(c);
        c->stream_->close();
      }
    }
  }
  if (idleTimer_ != nullptr) {
    net::closeAndDelete(reinterpret_cast<uv_handle_t*>(idleTimer_), idleTimer_);
    idleTimer_ = nullptr;
  }
}

}  // namespace tlsedge::proxy
