// The number of CPUs this process may run on: its scheduler affinity mask
// (taskset, systemd's CPUAffinity=, a container's cpuset), not the machine's
// count. `workers: auto` and the parallel certificate load size themselves by
// it, as HAProxy's nbthread and libuv's uv_available_parallelism() do: a
// daemon pinned to one CPU of 64 should not start 64 workers that take turns.
//
// Thread: any. Reads the calling thread's mask, which a process inherits at
// start; call it before changing any thread's affinity.
#pragma once

namespace tlsedge {

// At least 1. Falls back to std::thread::hardware_concurrency() when the
// mask cannot be read.
unsigned usableCpus();

}  // namespace tlsedge
