// The version of this build: CMake's PROJECT_VERSION, compiled into
// base/version.cc only. `tlsedge version` and the tlsedge_build_info metric
// print it.
#pragma once

namespace tlsedge {

const char* version();

}  // namespace tlsedge
