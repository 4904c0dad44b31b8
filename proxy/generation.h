// Generation: everything derived from one Config that the workers read.
//
// Built whole on the control loop (start, later reload), then published to
// each worker with Poster::post. Immutable; a connection keeps the generation
// it was accepted under until it closes, so a reload never changes the rules
// under a request in flight.
#pragma once

#include <memory>

#include "acme/challenge_store.h"
#include "certstore/selector.h"
#include "conf/config.h"
#include "proxy/router.h"

namespace tlsedge::proxy {

struct Generation {
  conf::ConfigPtr config;
  std::unique_ptr<Router> router;  // refers into *config
  std::shared_ptr<const certstore::Selector> selector;
};

using GenerationPtr = std::shared_ptr<const Generation>;

}  // namespace tlsedge::proxy
