#include "acme/dns_hook.h"

#include <algorithm>
#include <csignal>
#include <memory>

#include "acme/jose.h"
#include "acme/tls_alpn.h"
#include "net/loop.h"

namespace tlsedge::acme {
namespace {

constexpr size_t kMaxOutput = 4096;  // per stream, kept for the log

struct Run {
  uv_process_t process;
  uv_pipe_t pipes[2];  // stdout, stderr
  uv_timer_t timer;
  std::string output[2];
  std::string what;
  std::function<void(Status)> done;
  int64_t exitStatus = -1;
  int termSignal = 0;
  bool exited = false;
  bool timedOut = false;
  int openStreams = 2;
  int openHandles = 0;  // handles to close before `delete`

  void maybeFinish();
  void closeAll();
};

void Run::closeAll() {
  auto onClosed = [](uv_handle_t* h) noexcept {
    auto* run = static_cast<Run*>(h->data);
    if (--run->openHandles == 0) delete run;
  };
  for (uv_handle_t* h :
       {reinterpret_cast<uv_handle_t*>(&process), reinterpret_cast<uv_handle_t*>(&pipes[0]),
        reinterpret_cast<uv_handle_t*>(&pipes[1]), reinterpret_cast<uv_handle_t*>(&timer)}) {
    if (!uv_is_closing(h)) uv_close(h, onClosed);
  }
}

void Run::maybeFinish() {
  if (!exited || openStreams > 0) return;
  Status status = Ok{};
  if (timedOut || exitStatus != 0 || termSignal != 0) {
    std::string how = timedOut     ? "was killed at its time limit"
                      : termSignal ? "ended by signal " + std::to_string(termSignal)
                                   : "exited with status " + std::to_string(exitStatus);
    std::string text = what + " " + how;
    const char* names[2] = {"stdout", "stderr"};
    for (int i = 0; i < 2; ++i) {
      if (!output[i].empty()) text += "; " + std::string(names[i]) + ": " + output[i];
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    status = makeError(text);
  }
  auto callback = std::move(done);
  closeAll();
  if (callback) callback(std::move(status));
}

}  // namespace

std::string dnsRecordName(const std::string& host) {
  return "_acme-challenge." + (host.starts_with("*.") ? host.substr(2) : host);
}

std::string dnsRecordValue(const std::string& keyAuthorization) {
  return base64url(keyAuthorizationDigest(keyAuthorization));
}

void runCommand(uv_loop_t* loop, std::vector<std::string> argv, std::chrono::milliseconds timeout,
                std::function<void(Status)> done) {
  auto* run = new Run;
  run->what = "`" + argv.at(0) + (argv.size() > 1 ? " " + argv[1] : "") + "`";
  run->done = std::move(done);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  run->process.data = run;
  run->timer.data = run;
  uv_timer_init(loop, &run->timer);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  for (int i = 0; i < 2; ++i) {
    uv_pipe_init(loop, &run->pipes[i], 0);
    run->pipes[i].data = run;
    stdio[i + 1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[i + 1].data.stream = reinterpret_cast<uv_stream_t*>(&run->pipes[i]);
  }
  uv_process_options_t options{};
  options.file = args[0];
  options.args = args.data();
  options.stdio = stdio;
  options.stdio_count = 3;
  options.exit_cb = [](uv_process_t* p, int64_t status, int signal) noexcept {
    auto* r = static_cast<Run*>(p->data);
    r->exited = true;
    r->exitStatus = status;
    r->termSignal = signal;
    uv_timer_stop(&r->timer);
    if (r->timedOut && r->openStreams > 0) {  // a child of it may hold the pipes open
      for (auto& pipe : r->pipes) uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe));
      r->openStreams = 0;
    }
    r->maybeFinish();
  };
  run->openHandles = 4;
  if (int rc = uv_spawn(loop, &run->process, &options); rc != 0) {
    auto callback = std::move(run->done);
    const std::string what = run->what;
    run->closeAll();
    callback(makeError(what + " could not be started: " + net::uvErrorText(rc)));
    return;
  }
  uv_timer_start(
      &run->timer,
      [](uv_timer_t* t) noexcept {
        auto* r = static_cast<Run*>(t->data);
        r->timedOut = true;
        uv_process_kill(&r->process, SIGKILL);
      },
      static_cast<uint64_t>(timeout.count()), 0);
  for (int i = 0; i < 2; ++i) {
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&run->pipes[i]),
        [](uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
          static thread_local char chunk[4096];
          *buf = uv_buf_init(chunk, sizeof chunk);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
          auto* r = static_cast<Run*>(s->data);
          std::string& out = r->output[s == reinterpret_cast<uv_stream_t*>(&r->pipes[0]) ? 0 : 1];
          if (n > 0) {
            size_t room = kMaxOutput - std::min(kMaxOutput, out.size());
            out.append(buf->base, std::min(room, static_cast<size_t>(n)));
            return;
          }
          if (n < 0) {  // EOF or error: this stream is done
            uv_read_stop(s);
            --r->openStreams;
            r->maybeFinish();
          }
        });
  }
}

}  // namespace tlsedge::acme
