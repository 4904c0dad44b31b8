#include "daemon/upgrade.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace tlsedge::daemon {
namespace {

constexpr const char* kReadyFdVariable = "TLSEDGE_UPGRADE_FD";
constexpr int kFirstFd = 3;

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// argv[0] as execve needs it: with a slash as is (relative to the working
// directory, which has not changed), else looked up in $PATH now.
std::string executablePath(const std::string& argv0) {
  if (argv0.find('/') != std::string::npos) return argv0;
  const char* path = ::getenv("PATH");
  std::string_view rest(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    std::string candidate = std::string(rest.substr(0, colon)) + "/" + argv0;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return argv0;
}

bool isOurs(std::string_view entry) {
  for (std::string_view name :
       {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "TLSEDGE_UPGRADE_FD="}) {
    if (entry.starts_with(name)) return true;
  }
  return false;
}

// Writes `n` in decimal at `out` (async-signal-safe); returns the end.
char* writeDecimal(char* out, long n) {
  char digits[24];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0);
  while (len > 0) *out++ = digits[--len];
  *out = '\0';
  return out;
}

std::string exitText(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

}  // namespace

Upgrade::Upgrade(uv_loop_t* loop, Ready ready, Failed failed,
                 std::chrono::milliseconds readyTimeout)
    : loop_(loop),
      ready_(std::move(ready)),
      failed_(std::move(failed)),
      readyTimeout_(readyTimeout) {}

Upgrade::~Upgrade() {
  if (fd_ >= 0 && poll_ == nullptr) ::close(fd_);
}

Status Upgrade::start(const std::vector<std::string>& argv,
                      const std::vector<std::pair<int, std::string>>& sockets) {
  if (pid_ > 0)
    return makeError("an upgrade is already under way (PID " + std::to_string(pid_) + ")");
  if (argv.empty()) return makeError("upgrade: no argv to start");
  const std::string path = executablePath(argv[0]);
  if (::access(path.c_str(), X_OK) != 0) return makeError(errnoText("upgrade: " + path));

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return makeError(errnoText("upgrade: socketpair"));
  }
  // Everything the child needs, prepared before fork. The sockets are first
  // copied above the range they go to, so no dup2 overwrites a source.
  const int n = static_cast<int>(sockets.size());
  const int above = kFirstFd + n + 1;
  std::vector<int> sources;
  for (const auto& s : sockets) sources.push_back(::fcntl(s.first, F_DUPFD_CLOEXEC, above));
  sources.push_back(::fcntl(pair[1], F_DUPFD_CLOEXEC, above));
  ::close(pair[1]);
  auto closeSources = [&] {
    for (int fd : sources) {
      if (fd >= 0) ::close(fd);
    }
  };
  for (int fd : sources) {
    if (fd < 0) {
      const std::string why = errnoText("upgrade: dup");
      closeSources();
      ::close(pair[0]);
      return makeError(why);
    }
  }
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!isOurs(*e)) env.emplace_back(*e);
  }
  std::string names;
  for (const auto& s : sockets) names += (names.empty() ? "" : ":") + s.second;
  env.push_back("LISTEN_FDS=" + std::to_string(n));
  env.push_back("LISTEN_FDNAMES=" + names);
  env.push_back(std::string(kReadyFdVariable) + "=" + std::to_string(kFirstFd + n));
  env.push_back("LISTEN_PID=" + std::string(24, '\0'));  // filled in by the child
  const size_t pidEntry = env.size() - 1;
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args(argv);
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  char* pidDigits = env[pidEntry].data() + std::strlen("LISTEN_PID=");

  // Signals stay blocked from fork until the child has reset their
  // handlers: libuv's would write into the loop of this process.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = ::fork();
  if (pid == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int i = 0; i <= n; ++i) {
      if (::dup2(sources[static_cast<size_t>(i)], kFirstFd + i) < 0) ::_exit(127);
    }
    ::close_range(static_cast<unsigned>(kFirstFd + n + 1), ~0U, 0);
    writeDecimal(pidDigits, static_cast<long>(::getpid()));
    ::execve(path.c_str(), argp.data(), envp.data());
    ::_exit(127);
  }
  const int forkErrno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  closeSources();
  if (pid < 0) {
    ::close(pair[0]);
    errno = forkErrno;
    return makeError(errnoText("upgrade: fork"));
  }
  pid_ = pid;
  timedOut_ = false;
  fd_ = pair[0];
  poll_ = new uv_poll_t;
  uv_poll_init(loop_, poll_, fd_);
  poll_->data = this;
  uv_poll_start(poll_, UV_READABLE | UV_DISCONNECT, [](uv_poll_t* p, int, int) noexcept {
    static_cast<Upgrade*>(p->data)->onReadable();
  });
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  uv_timer_start(
      timer_,
      [](uv_timer_t* t) noexcept {
        auto* self = static_cast<Upgrade*>(t->data);
        // Its exit ends the upgrade (onReadable sees the socket close). It
        // may still say READY=1 first (a process that blocks SIGTERM until
        // its loop runs does): taking over then would hand the service to
        // a process about to stop.
        self->timedOut_ = true;
        ::kill(self->pid_, SIGTERM);
      },
      static_cast<uint64_t>(readyTimeout_.count()), 0);
  return Ok{};
}

void Upgrade::onReadable() {
  char buf[64];
  const ssize_t got = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got > 0 && !timedOut_ &&
      std::string_view(buf, static_cast<size_t>(got)).find("READY=1") != std::string_view::npos) {
    const pid_t pid = pid_;
    finish("");
    ready_(pid);
    return;
  }
  if (got > 0) return;  // something else (or too late): wait for READY=1 or the end
  // The socket closed without a READY=1 in time: the new process is gone.
  int status = 0;
  const pid_t reaped = ::waitpid(pid_, &status, 0);
  const std::string how = reaped == pid_ ? exitText(status) : errnoText("waitpid");
  finish("new process " + std::to_string(pid_) + " " +
         (timedOut_ ? "was not ready within " + std::to_string(readyTimeout_.count()) +
                          " ms (sent SIGTERM; " + how + ")"
                    : how + " before it was ready"));
}

void Upgrade::finish(const std::string& failure) {
  close();
  pid_ = -1;
  if (!failure.empty()) failed_(failure);
}

void Upgrade::close() {
  if (poll_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void Upgrade::cancel() {
  if (pid_ > 0) ::kill(pid_, SIGTERM);
  pid_ = -1;
  close();
}

bool Upgrade::signalReady() {
  const char* text = ::getenv(kReadyFdVariable);
  if (text == nullptr) return false;
  const int fd = std::atoi(text);
  ::unsetenv(kReadyFdVariable);
  struct stat st {};
  if (fd < kFirstFd || ::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  static constexpr char kReady[] = "READY=1";
  [[maybe_unused]] ssize_t sent = ::send(fd, kReady, sizeof kReady - 1, MSG_NOSIGNAL);
  ::close(fd);
  return true;
}

}  // namespace tlsedge::daemon
