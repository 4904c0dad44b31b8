// The DNS-01 hook (RFC 8555 section 8.4): a configured command run as
// `cmd set _acme-challenge.<name> <value>` before a dns-01 challenge is
// answered and `cmd clear _acme-challenge.<name> <value>` once the order
// ended. The command returns when the record is published (exit 0) or
// failed (anything else); its stdout and stderr go to the log on failure.
//
// Thread: the control loop. uv_spawn, never waiting: `done` runs on the
// loop when the command exited (or was killed at the time limit). A run owns
// itself: it outlives whoever started it, which drops interest by ignoring
// the callback (see Client's life token).
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace tlsedge::acme {

// `_acme-challenge.<host>` for a host, a wildcard's `*.` removed.
std::string dnsRecordName(const std::string& host);
// base64url(SHA-256(keyAuthorization)), the TXT record's value.
std::string dnsRecordValue(const std::string& keyAuthorization);

// Runs `argv` (argv[0] a path). `done` gets Ok on exit status 0, else an
// error naming the command, how it ended and its output (at most 4 KiB of
// each stream). Past `timeout` the process is killed (SIGKILL).
void runCommand(uv_loop_t* loop, std::vector<std::string> argv, std::chrono::milliseconds timeout,
                std::function<void(Status)> done);

}  // namespace tlsedge::acme
