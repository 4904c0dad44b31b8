#include "fleet/open_storage.h"

#include "certstore/file_storage.h"

namespace tlsedge::fleet {

Result<OpenedStorage> openStorage(const conf::Config& config) {
  if (!config.etcd) return OpenedStorage{certstore::FileStorage::open(config.stateDir), nullptr};
  auto fleet = EtcdStorage::open(*config.etcd);
  if (!fleet) return fleet.error();
  return OpenedStorage{*fleet, *fleet};
}

}  // namespace tlsedge::fleet
