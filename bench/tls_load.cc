// tlsedge_tls_load: a BoringSSL HTTPS load client for the comparison harness
// (bench/loadcmp.py, issue 8). One thread, one epoll loop, non-blocking
// sockets; it drives any HTTPS server (tlsedge, nginx, HAProxy) the same way:
// TLS 1.3, X25519 only, no certificate verification (the server's
// CertificateVerify signature is still checked by the protocol).
//
//   tlsedge_tls_load --connect HOST:PORT [--sni NAME] [--host NAME] [--path P]
//                    --mode handshake|resume|rate|idle
//                    [--concurrency C] [--duration S] [--rate R] [--warmup S]
//                    [--connections N]
//
// Modes (one JSON line on stdout at the end):
//   handshake  C connections in flight; each: connect, full handshake, one
//              GET with `Connection: close`, the whole response, close.
//              Repeats for --duration seconds.
//   resume     the same, each slot offering the session ticket its previous
//              connection received (counts how many resumed).
//   rate       C keep-alive connections; GETs issued open-loop at --rate per
//              second, round-robin over the connections (queued behind a
//              busy one). Latency is measured from the time a request was
//              due, not sent, so a stalled server is not hidden
//              (no coordinated omission); the --warmup first seconds are
//              not recorded. p50/p90/p99/max in microseconds.
//   idle       opens --connections N connections (at most C handshakes at
//              once), one keep-alive GET on each, prints
//              {"open": N, ...} and holds them until stdin reaches EOF.
// A response must be `HTTP/1.x 200` with a Content-Length (or end at close).
//
//   tlsedge_tls_load --crypto-floor
// prints the CPU time (CLOCK_PROCESS_CPUTIME_ID, so other load on the
// machine does not count) of one ECDSA P-256 signature, one X25519 key
// generation and one X25519 shared secret with this BoringSSL: the
// server's crypto in a full TLS 1.3 handshake with an ECDSA certificate.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/curve25519.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

uint64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "tls_load: %s\n", what);
  std::exit(2);
}

enum class Mode { kHandshake, kResume, kRate, kIdle };

struct Options {
  sockaddr_in addr{};
  std::string sni = "localhost";
  std::string host;
  std::string path = "/";
  Mode mode = Mode::kHandshake;
  int concurrency = 16;
  double duration = 5;
  double rate = 1000;
  double warmup = 1;
  int connections = 10000;
};

enum class State { kConnecting, kHandshaking, kWriting, kReading, kIdle, kClosed };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::kClosed;
  int slot = 0;
  std::string out;
  size_t outOff = 0;
  std::string in;
  size_t headEnd = 0;         // bytes of the head once parsed, else 0
  long long bodyLength = -1;  // Content-Length, -1: until close
  std::deque<uint64_t> due;   // rate mode: due times of queued requests
  uint64_t sentDue = 0;       // due time of the request on the wire
  uint32_t events = 0;        // epoll interest registered
};

struct Stats {
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t resumed = 0;
  std::vector<uint32_t> latencyUs;
  std::string firstError;
};

class Load {
 public:
  explicit Load(const Options& o) : o_(o) {
    ctx_ = SSL_CTX_new(TLS_method());
    if (!ctx_) die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, TLS1_3_VERSION);
    if (!SSL_CTX_set1_curves_list(ctx_, "X25519")) die("X25519 not available");
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    if (o.mode == Mode::kResume) {
      SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
      SSL_CTX_sess_set_new_cb(ctx_, &Load::onNewSession);
    }
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    std::string host = o.host.empty() ? o.sni : o.host;
    request_ = "GET " + o.path + " HTTP/1.1\r\nHost: " + host + "\r\n";
    if (o.mode == Mode::kHandshake || o.mode == Mode::kResume) request_ += "Connection: close\r\n";
    request_ += "\r\n";
  }

  int run();

 private:
  static int onNewSession(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<Load*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    auto* c = static_cast<Conn*>(SSL_get_app_data(ssl));
    SSL_SESSION*& slot = self->sessions_[size_t(c->slot)];
    if (slot) SSL_SESSION_free(slot);
    slot = session;  // keep the newest ticket of this slot
    return 1;
  }

  void open(Conn& c, int slot);
  void drive(Conn& c);
  void closeConn(Conn& c, bool ok);
  void fail(Conn& c, const char* what);
  void watch(Conn& c, uint32_t events);
  bool parseHead(Conn& c);
  void startRequest(Conn& c, uint64_t due);
  void armTimer(uint64_t at);

  Options o_;
  SSL_CTX* ctx_ = nullptr;
  int ep_ = -1;
  int timer_ = -1;
  std::string request_;
  std::vector<Conn> conns_;
  std::vector<SSL_SESSION*> sessions_;
  Stats st_;
  bool recording_ = true;
  bool stopping_ = false;
  uint64_t recordFrom_ = 0;
  int opened_ = 0;  // idle mode: connections started
  int ready_ = 0;   // idle mode: connections done with their request
};

void Load::watch(Conn& c, uint32_t events) {
  if (c.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u32 = uint32_t(&c - conns_.data());
  if (epoll_ctl(ep_, c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev) != 0) {
    die("epoll_ctl failed");
  }
  c.events = events;
}

void Load::open(Conn& c, int slot) {
  c = Conn{};
  c.slot = slot;
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) die("socket() failed (raise ulimit -n)");
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.ssl = SSL_new(ctx_);
  SSL_set_app_data(c.ssl, &c);
  SSL_set_fd(c.ssl, c.fd);
  SSL_set_connect_state(c.ssl);
  SSL_set_tlsext_host_name(c.ssl, o_.sni.c_str());
  if (o_.mode == Mode::kResume && sessions_[size_t(slot)]) {
    SSL_set_session(c.ssl, sessions_[size_t(slot)]);
  }
  int r = connect(c.fd, reinterpret_cast<const sockaddr*>(&o_.addr), sizeof o_.addr);
  if (r != 0 && errno != EINPROGRESS) {
    fail(c, strerror(errno));
    return;
  }
  c.state = r == 0 ? State::kHandshaking : State::kConnecting;
  watch(c, EPOLLOUT);
  if (r == 0) drive(c);
}

void Load::fail(Conn& c, const char* what) {
  if (st_.firstError.empty()) st_.firstError = what;
  closeConn(c, false);
}

void Load::closeConn(Conn& c, bool ok) {
  if (ok) {
    ++st_.ok;
  } else if (!stopping_) {
    ++st_.errors;
  }
  if (c.ssl) {
    if (ok) SSL_shutdown(c.ssl);  // sends close_notify; does not wait
    SSL_free(c.ssl);
  }
  if (c.fd >= 0) close(c.fd);  // also leaves the epoll set
  c.ssl = nullptr;
  c.fd = -1;
  c.events = 0;
  c.state = State::kClosed;
}

bool Load::parseHead(Conn& c) {
  size_t end = c.in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  c.headEnd = end + 4;
  std::string head = c.in.substr(0, end + 2);
  if (head.compare(0, 9, "HTTP/1.1 ") != 0 && head.compare(0, 9, "HTTP/1.0 ") != 0) return false;
  if (head.compare(9, 3, "200") != 0) {
    c.headEnd = std::string::npos;  // refused below
    return true;
  }
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char ch) { return char(std::tolower(ch)); });
  size_t cl = head.find("\r\ncontent-length:");
  c.bodyLength = cl == std::string::npos ? -1 : std::atoll(head.c_str() + cl + 17);
  return true;
}

void Load::startRequest(Conn& c, uint64_t due) {
  c.out = request_;
  c.outOff = 0;
  c.in.clear();
  c.headEnd = 0;
  c.bodyLength = -1;
  c.sentDue = due;
  c.state = State::kWriting;
  drive(c);
}

// Runs the connection's state machine as far as the socket allows, then
// registers what BoringSSL waits for.
void Load::drive(Conn& c) {
  for (;;) {
    switch (c.state) {
      case State::kConnecting: {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return fail(c, strerror(err));
        c.state = State::kHandshaking;
        break;
      }
      case State::kHandshaking: {
        int r = SSL_do_handshake(c.ssl);
        if (r == 1) {
          if (SSL_session_reused(c.ssl)) ++st_.resumed;
          if (o_.mode == Mode::kRate) {
            c.state = State::kIdle;
          } else {
            startRequest(c, 0);
            return;
          }
          break;
        }
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ) return watch(c, EPOLLIN);
        if (e == SSL_ERROR_WANT_WRITE) return watch(c, EPOLLOUT);
        char buf[256];
        ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
        return fail(c, buf);
      }
      case State::kWriting: {
        int r = SSL_write(c.ssl, c.out.data() + c.outOff, int(c.out.size() - c.outOff));
        if (r > 0) {
          c.outOff += size_t(r);
          if (c.outOff == c.out.size()) c.state = State::kReading;
          break;
        }
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ) return watch(c, EPOLLIN);
        if (e == SSL_ERROR_WANT_WRITE) return watch(c, EPOLLOUT);
        return fail(c, "write failed");
      }
      case State::kReading: {
        char buf[16384];
        int r = SSL_read(c.ssl, buf, sizeof buf);
        bool eof = false;
        if (r > 0) {
          c.in.append(buf, size_t(r));
        } else {
          int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_READ) {
            // fall through to the completeness check below, then wait
          } else if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
            eof = true;
          } else {
            return fail(c, "read failed");
          }
        }
        if (c.headEnd == 0 && !parseHead(c)) {
          if (eof) return fail(c, "connection closed before a response head");
          if (r <= 0) return watch(c, EPOLLIN);
          break;
        }
        if (c.headEnd == std::string::npos) return fail(c, "response status not 200");
        size_t body = c.in.size() - c.headEnd;
        bool done = c.bodyLength >= 0 ? body >= size_t(c.bodyLength) : eof;
        if (!done) {
          if (eof) return fail(c, "connection closed inside a response body");
          if (r <= 0) return watch(c, EPOLLIN);
          break;
        }
        if (o_.mode == Mode::kRate) {
          uint64_t t = nowNs();
          if (c.sentDue >= recordFrom_ && recording_) {
            st_.latencyUs.push_back(
                uint32_t(std::min<uint64_t>((t - c.sentDue) / 1000, UINT32_MAX)));
            ++st_.ok;
          }
          c.state = State::kIdle;
          break;
        }
        if (o_.mode == Mode::kIdle) {
          ++ready_;
          c.state = State::kIdle;
          break;
        }
        int slot = c.slot;
        closeConn(c, true);
        if (!stopping_) open(c, slot);
        return;
      }
      case State::kIdle: {
        if (o_.mode == Mode::kRate && !c.due.empty()) {
          uint64_t due = c.due.front();
          c.due.pop_front();
          startRequest(c, due);
          return;
        }
        // Nothing is expected on an idle connection: a close (or stray
        // bytes) ends it instead of waking the loop forever.
        char b[1];
        int r = SSL_read(c.ssl, b, 1);
        if (r <= 0 && SSL_get_error(c.ssl, r) == SSL_ERROR_WANT_READ) return watch(c, EPOLLIN);
        return fail(c,
                    r > 0 ? "bytes on an idle connection" : "idle connection closed by the server");
      }
      case State::kClosed:
        return;
    }
  }
}

void Load::armTimer(uint64_t at) {
  itimerspec its{};
  its.it_value.tv_sec = time_t(at / 1000000000u);
  its.it_value.tv_nsec = long(at % 1000000000u);
  timerfd_settime(timer_, TFD_TIMER_ABSTIME, &its, nullptr);
}

int Load::run() {
  SSL_CTX_set_app_data(ctx_, this);
  int n = o_.mode == Mode::kIdle ? o_.connections : o_.concurrency;
  conns_.resize(size_t(n));
  sessions_.assign(size_t(n), nullptr);
  timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u32 = UINT32_MAX;
  epoll_ctl(ep_, EPOLL_CTL_ADD, timer_, &tev);

  uint64_t start = nowNs();
  int first = o_.mode == Mode::kIdle ? std::min(o_.concurrency, n) : n;
  for (int i = 0; i < first; ++i) open(conns_[size_t(i)], i);
  opened_ = first;

  uint64_t end = start + uint64_t(o_.duration * 1e9);
  uint64_t nextDue = 0, interval = 0, issued = 0;
  if (o_.mode == Mode::kRate) {
    // Connections are set up before the clock starts.
    uint64_t setupDeadline = start + 10000000000u;
    auto established = [&] {
      return std::all_of(conns_.begin(), conns_.end(),
                         [](const Conn& c) { return c.state == State::kIdle; });
    };
    epoll_event evs[256];
    while (!established() && nowNs() < setupDeadline) {
      int k = epoll_wait(ep_, evs, 256, 100);
      for (int j = 0; j < k; ++j) {
        if (evs[j].data.u32 != UINT32_MAX) drive(conns_[evs[j].data.u32]);
      }
    }
    if (!established()) die("rate mode: connections not established in 10 s");
    start = nowNs();
    end = start + uint64_t((o_.duration + o_.warmup) * 1e9);
    recordFrom_ = start + uint64_t(o_.warmup * 1e9);
    interval = uint64_t(1e9 / o_.rate);
    nextDue = start;
    armTimer(nextDue);
  } else if (o_.mode != Mode::kIdle) {
    armTimer(end);
  }

  epoll_event evs[256];
  bool announced = false;
  for (;;) {
    if (o_.mode == Mode::kIdle) {
      while (opened_ < n && opened_ - ready_ - int(st_.errors) < o_.concurrency) {
        open(conns_[size_t(opened_)], opened_);
        ++opened_;
      }
      if (!announced && ready_ + int(st_.errors) >= n) {
        std::printf("{\"mode\":\"idle\",\"open\":%d,\"errors\":%" PRIu64
                    ",\"seconds\":%.3f%s%s%s}\n",
                    ready_, st_.errors, double(nowNs() - start) / 1e9,
                    st_.firstError.empty() ? "" : ",\"first_error\":\"", st_.firstError.c_str(),
                    st_.firstError.empty() ? "" : "\"");
        std::fflush(stdout);
        announced = true;
        // Hold: the connections stay open until stdin closes.
        pollfd p{0, POLLIN, 0};
        char b[64];
        while (poll(&p, 1, -1) >= 0 && read(0, b, sizeof b) > 0) {
        }
        return 0;
      }
    }
    int k = epoll_wait(ep_, evs, 256, 1000);
    uint64_t t = nowNs();
    for (int j = 0; j < k; ++j) {
      uint32_t id = evs[j].data.u32;
      if (id == UINT32_MAX) {
        uint64_t exp;
        (void)!read(timer_, &exp, sizeof exp);
        continue;
      }
      Conn& c = conns_[id];
      if (c.state != State::kClosed) drive(c);
    }
    if (o_.mode == Mode::kRate) {
      while (nextDue <= t && nextDue < end) {
        Conn& c = conns_[size_t(issued % uint64_t(n))];
        ++issued;
        if (c.state == State::kClosed) {
          ++st_.errors;
        } else {
          c.due.push_back(nextDue);
          if (c.state == State::kIdle) drive(c);
        }
        nextDue += interval;
      }
      if (nextDue < end) armTimer(nextDue);
      // Stop when every due request was answered (or 5 s after the end).
      bool busy = std::any_of(conns_.begin(), conns_.end(), [](const Conn& c) {
        return c.state == State::kWriting || c.state == State::kReading || !c.due.empty();
      });
      if (nextDue >= end && (!busy || t > end + 5000000000u)) break;
    } else if (o_.mode != Mode::kIdle && t >= end) {
      break;
    }
  }
  double seconds = double(nowNs() - start) / 1e9;
  stopping_ = true;
  for (Conn& c : conns_) {
    if (c.state != State::kClosed) closeConn(c, false);
  }
  const char* mode = o_.mode == Mode::kHandshake ? "handshake"
                     : o_.mode == Mode::kResume  ? "resume"
                                                 : "rate";
  std::printf("{\"mode\":\"%s\",\"ok\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"resumed\":%" PRIu64
              ",\"seconds\":%.3f",
              mode, st_.ok, st_.errors, st_.resumed, seconds);
  if (o_.mode == Mode::kRate) {
    auto& v = st_.latencyUs;
    std::sort(v.begin(), v.end());
    auto pct = [&](double p) {
      return v.empty() ? 0u : v[std::min(v.size() - 1, size_t(p * double(v.size())))];
    };
    std::printf(",\"rate\":%.1f,\"issued\":%" PRIu64
                ",\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"max_us\":%u",
                o_.rate, issued, pct(0.5), pct(0.9), pct(0.99), v.empty() ? 0u : v.back());
  }
  if (!st_.firstError.empty()) std::printf(",\"first_error\":\"%s\"", st_.firstError.c_str());
  std::printf("}\n");
  return 0;
}

uint64_t cpuNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// CPU microseconds per call of op(), run for about `seconds` of CPU time.
template <typename Op>
double cpuMicrosPerOp(Op op, double seconds) {
  for (int i = 0; i < 50; ++i) op();  // warm caches
  uint64_t start = cpuNs(), end = start + uint64_t(seconds * 1e9);
  uint64_t n = 0, now = start;
  while (now < end) {
    for (int i = 0; i < 50; ++i) op();
    n += 50;
    now = cpuNs();
  }
  return double(now - start) / 1e3 / double(n);
}

int cryptoFloor() {
  EC_KEY* key = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  if (key == nullptr || !EC_KEY_generate_key(key)) die("P-256 key generation failed");
  uint8_t digest[32] = {1, 2, 3};
  std::vector<uint8_t> sig(ECDSA_size(key));
  double sign = cpuMicrosPerOp(
      [&] {
        unsigned len = unsigned(sig.size());
        if (!ECDSA_sign(0, digest, sizeof digest, sig.data(), &len, key)) die("ECDSA_sign failed");
      },
      1.0);
  uint8_t pub[32], priv[32], peerPub[32], peerPriv[32], secret[32];
  X25519_keypair(peerPub, peerPriv);
  double keygen = cpuMicrosPerOp([&] { X25519_keypair(pub, priv); }, 1.0);
  double shared = cpuMicrosPerOp(
      [&] {
        if (!X25519(secret, priv, peerPub)) die("X25519 failed");
      },
      1.0);
  EC_KEY_free(key);
  std::printf(
      "{\"ecdsa_p256_sign_us\":%.2f,\"x25519_keygen_us\":%.2f,\"x25519_shared_us\":%.2f,"
      "\"total_us\":%.2f}\n",
      sign, keygen, shared, sign + keygen + shared);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.addr.sin_family = AF_INET;
  bool haveAddr = false;
  if (argc == 2 && std::string(argv[1]) == "--crypto-floor") return cryptoFloor();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) die(("missing value after " + arg).c_str());
    std::string v = argv[++i];
    if (arg == "--connect") {
      size_t colon = v.rfind(':');
      if (colon == std::string::npos ||
          inet_pton(AF_INET, v.substr(0, colon).c_str(), &o.addr.sin_addr) != 1) {
        die("--connect wants IPv4:PORT");
      }
      o.addr.sin_port = htons(uint16_t(std::atoi(v.c_str() + colon + 1)));
      haveAddr = true;
    } else if (arg == "--sni") {
      o.sni = v;
    } else if (arg == "--host") {
      o.host = v;
    } else if (arg == "--path") {
      o.path = v;
    } else if (arg == "--mode") {
      if (v == "handshake") {
        o.mode = Mode::kHandshake;
      } else if (v == "resume") {
        o.mode = Mode::kResume;
      } else if (v == "rate") {
        o.mode = Mode::kRate;
      } else if (v == "idle") {
        o.mode = Mode::kIdle;
      } else {
        die("--mode is handshake, resume, rate or idle");
      }
    } else if (arg == "--concurrency") {
      o.concurrency = std::max(1, std::atoi(v.c_str()));
    } else if (arg == "--duration") {
      o.duration = std::atof(v.c_str());
    } else if (arg == "--rate") {
      o.rate = std::atof(v.c_str());
    } else if (arg == "--warmup") {
      o.warmup = std::atof(v.c_str());
    } else if (arg == "--connections") {
      o.connections = std::max(1, std::atoi(v.c_str()));
    } else {
      die(("unknown option " + arg).c_str());
    }
  }
  if (!haveAddr) die("--connect HOST:PORT is required");
  signal(SIGPIPE, SIG_IGN);
  Load load(o);
  return load.run();
}
