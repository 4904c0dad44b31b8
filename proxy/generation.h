// Generation: everything derived from one Config that the workers read.
//
// Built whole on the control loop (start, later reload), then published to
// each worker with Poster::post. Immutable; a connection keeps the generation
// it was accepted under until it closes, so a reload never changes the rules
// under a request in flight.
#pragma once

#include <memory>
#include <string>

#include "acme/challenge_store.h"
#include "certstore/selector.h"
#include "conf/config.h"
#include "proxy/router.h"
#include "proxy/upstream/upstream_tls.h"

namespace tlsedge::proxy {

struct Generation {
  conf::ConfigPtr config;
  std::unique_ptr<Router> router;  // refers into *config
  // The certificate snapshot built with this config. Workers do not read it
  // here: the control loop publishes it (Worker::publishCertificates), then
  // hot swaps replace it without a new Generation.
  std::shared_ptr<const certstore::Selector> selector;
  // Per upstream, by name: its TLS client context (origins over `tls`; the
  // CA files are read at load) and the key of its per-worker state.
  UpstreamSetups upstreams;

  // Every upstream of `config` has one (built by loadGeneration).
  const UpstreamSetup& upstreamSetup(const conf::Upstream& upstream) const {
    return upstreams.at(upstream.name);
  }
};

using GenerationPtr = std::shared_ptr<const Generation>;

}  // namespace tlsedge::proxy
