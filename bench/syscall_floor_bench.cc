// The machine's floor for a system call: what entering and leaving the
// kernel costs before any work is done there. A proxied keep-alive request
// needs at least four (read the client, write the origin, read the origin,
// write the client), so four of these are a fixed share of figure 1 of
// bench/loadcmp.py that no user-space change can remove (docs/benchmarks.md).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

// The cheapest call there is: no arguments, no file, no lock.
void BM_SyscallFloorGetppid(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(::syscall(SYS_getppid));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SyscallFloorGetppid);

// A write of a small response-sized buffer to a file that discards it: the
// descriptor lookup and the copy-in path, without a socket's work.
void BM_SyscallFloorWriteDevNull(benchmark::State& state) {
  const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    state.SkipWithError("cannot open /dev/null");
    return;
  }
  char buffer[256] = {};
  for (auto _ : state) benchmark::DoNotOptimize(::write(fd, buffer, sizeof(buffer)));
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SyscallFloorWriteDevNull);

}  // namespace
