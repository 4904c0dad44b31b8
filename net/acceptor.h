// Acceptor: takes connections from one listening socket, and can pause.
//
// Why not uv_listen(): libuv accepts whenever a listening uv_tcp_t is
// readable and has no way to stop (uv_read_stop does not apply to listening
// handles), and closing the handle would close the socket, resetting every
// connection in its queue and giving up its SO_REUSEPORT slot. A worker at
// max_connections or max_handshakes must instead stop accepting and let the
// kernel hold new connections in the listen backlog (nginx does the same).
// So the listening fd is watched with a uv_poll_t and accept4() is called
// here (non-blocking, close-on-exec); pause() just stops the watch.
//
// Thread: the loop it was created on. Ownership: self-owned; close() ends it
// (the listening fd is closed and the object deleted once libuv is done).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <functional>

namespace tlsedge::net {

class Acceptor {
 public:
  // Receives each accepted connection's fd (non-blocking, close-on-exec,
  // TCP_NODELAY) and owns it from then on; `peer` is the client's address,
  // valid during the call. May call pause() or close().
  using OnAccept = std::function<void(int fd, const sockaddr* peer)>;

  // Takes ownership of `listenFd`, a listening socket, and starts accepting.
  // Sets TCP_NODELAY on it: Linux copies it to every accepted socket, which
  // saves a setsockopt per connection.
  // Returns null (the fd closed, the libuv error in *error) on failure.
  static Acceptor* start(uv_loop_t* loop, int listenFd, OnAccept onAccept, int* error);

  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Stop and restart accepting; connections meanwhile wait in the backlog.
  void pause();
  void resume();
  bool paused() const { return paused_; }

  // Stops for good and closes the listening socket; the Acceptor deletes
  // itself later. Do not touch it after this call.
  void close();

 private:
  Acceptor(int fd, OnAccept onAccept);
  ~Acceptor();

  static void onReadable(uv_poll_t* poll, int status, int events) noexcept;
  static void onBackoffOver(uv_timer_t* timer) noexcept;
  static void onHandleClosed(uv_handle_t* handle) noexcept;
  void acceptSome();
  void watch();

  uv_poll_t poll_;
  uv_timer_t backoff_;  // after EMFILE and the like: a pause before trying again
  int fd_;
  OnAccept onAccept_;
  int handlesOpen_ = 0;
  bool paused_ = false;
  bool backingOff_ = false;
  bool closing_ = false;
};

}  // namespace tlsedge::net
