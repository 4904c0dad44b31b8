#include "base/version.h"

namespace tlsedge {

const char* version() { return TLSEDGE_VERSION; }

}  // namespace tlsedge
