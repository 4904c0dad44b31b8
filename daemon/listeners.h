// Listeners: the control loop's record of the listening sockets, and the
// change from one `listen:` configuration to the next.
//
// A listener is one configured address (https or http) with one
// SO_REUSEPORT socket per worker. At start and on every reload the control
// loop diffs the config's lists against the open listeners: a listener in
// both keeps its sockets untouched (its accept queues, its resolved port),
// a new one gets fresh sockets, bound and listening before anything is
// committed, and a removed one is closed by each worker, which stops
// accepting on it while the connections it accepted carry on.
//
// Matching an entry of the new config to an open listener, per scheme:
//   1. the same address as configured, in canonical form ("[::0]:443" is
//      "[::]:443"). Port 0 counts as an address: "127.0.0.1:0" in the old
//      and the new config is the same listener and keeps the port the kernel
//      gave it (repeated port-0 entries pair up in order). Re-binding it
//      would hand out a different port on every reload.
//   2. else, for an entry with a port, the address the listener is bound
//      to: writing down the port a "127.0.0.1:0" listener got keeps it too.
// Everything else opens or closes. Moving an address between https and http
// is a close plus an open.
//
// Inherited sockets (systemd socket activation, or the old process of an
// upgrade, see daemon/service_manager.h): offered before the first prepare(),
// a new listener takes every inherited socket bound to its address (a port-0
// entry: the first one on its host) instead of binding. Each worker gets a
// dup of one of them (worker w: socket w mod k; with more sockets than
// workers the extra ones go to workers too, so no accept queue is left
// unserved). An inherited socket no entry takes fails that prepare(), named.
//
// The set keeps its own copy of every listening socket (close-on-exec), so
// that an upgrade can hand all of them to the next binary: handover().
//
// Thread: ListenerSet lives on the control loop. A ListenerUpdate travels to
// one worker inside Worker::reconfigure and is applied on its loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "conf/config.h"
#include "daemon/service_manager.h"
#include "proxy/listener_update.h"

namespace tlsedge::daemon {

// The control loop's copies of one listener's sockets; closed with the last
// Listener record that refers to them.
class SocketGroup {
 public:
  SocketGroup() = default;
  SocketGroup(const SocketGroup&) = delete;
  SocketGroup& operator=(const SocketGroup&) = delete;
  ~SocketGroup();
  std::vector<int> fds;
};

class ListenerSet {
 public:
  struct Listener {
    uint64_t id = 0;
    bool tls = false;
    bool proxyProtocol = false;  // part of its identity: a change opens a new one
    std::string configured;      // canonical form of the address as configured
    std::string bound;           // canonical form with the resolved port
    std::string display;         // the address as logged: "127.0.0.1:8443"
    uint16_t port = 0;           // resolved
    std::shared_ptr<SocketGroup> sockets;
  };

  // A change computed by prepare(): the sockets of new listeners are open.
  // Dropping a Plan without commit() closes them again.
  struct Plan {
    std::vector<Listener> next;                             // all listeners after the change
    std::vector<Listener> opened;                           // the new ones among them
    std::vector<Listener> closed;                           // open now, gone after the change
    std::vector<std::vector<proxy::ListenSocket>> sockets;  // [worker] -> new sockets
    uint16_t httpsPort = 443;
  };

  // Diffs `config`'s listen lists against the open listeners and opens one
  // socket per worker for each new listener. Changes nothing: on error
  // (address in use, ...) every socket opened here is closed, and the error
  // names the address.
  Result<Plan> prepare(const conf::Config& config, int workers);

  // Makes `plan` the running state, logs `listening SCHEME ADDR` for each
  // new listener and `closed listener ADDR (SCHEME)` for each removed one,
  // and returns what each worker must do.
  std::vector<proxy::ListenerUpdate> commit(Plan plan);

  const std::vector<Listener>& listeners() const { return open_; }

  // Sockets passed in at start, for the first prepare() (see above).
  void offerInherited(std::vector<service::InheritedSocket> sockets) {
    inherited_ = std::move(sockets);
  }
  // Every open listener's sockets with its scheme as name ("https"), for
  // the next binary of an upgrade. The fds stay owned by the set.
  std::vector<std::pair<int, std::string>> handover() const;

 private:
  // The fds of the inherited sockets bound to `address`'s address (port 0:
  // the first one on its host), removed from inherited_.
  std::vector<int> takeInherited(const conf::SocketAddress& address, const std::string& canonical);

  std::vector<Listener> open_;  // config order: https entries, then http
  std::vector<service::InheritedSocket> inherited_;
  uint64_t nextId_ = 1;
};

}  // namespace tlsedge::daemon
