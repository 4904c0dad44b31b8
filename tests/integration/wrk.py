"""wrk runs for the load tests: a Lua script that checks every response's
status and body, and the parsed summary (requests, socket errors, non-2xx/3xx
responses, good/bad bodies)."""

import os
import re
import subprocess

from common import require_tool

# wrk calls response() for every response of a thread; done() reads the
# threads' counters back (written for any number of threads).
_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0; first_bad = "" end
function response(status, headers, body)
  if status == %(status)d and body and string.find(body, %(needle)s, 1, true) then
    good = good + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200) end
  end
end
function done(summary, latency, requests)
  local g, b, f = 0, 0, ""
  for _, t in ipairs(threads) do
    g = g + t:get("good"); b = b + t:get("bad")
    if f == "" then f = t:get("first_bad") end
  end
  io.write(string.format("LUA good=%%d bad=%%d first_bad=%%q\n", g, b, f))
end
"""


def _lua_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_check_script(path, status, needle):
    """A wrk Lua script counting responses with `status` whose body contains
    `needle` as good, every other response as bad."""
    with open(path, "w") as f:
        f.write(_LUA % {"status": status, "needle": _lua_quote(needle)})
    return path


def wrk_command(url, script, *, threads, connections, duration, timeout="5s", host=None,
                extra=()):
    """The wrk command line (keep-alive is wrk's default)."""
    cmd = [require_tool("wrk"), f"-t{threads}", f"-c{connections}", f"-d{duration}",
           "--timeout", timeout, "-s", script]
    if host:
        cmd += ["-H", f"Host: {host}"]
    return cmd + list(extra) + [url]


def start_wrk(cmd, workdir):
    """Starts wrk in the background, output to a file in `workdir`. Returns
    (Popen, output path); stop it by its PID if the test fails."""
    out_path = os.path.join(workdir, f"wrk-{os.getpid()}-{id(cmd)}.out")
    out = open(out_path, "wb")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    finally:
        out.close()
    return proc, out_path


class WrkResult:
    def __init__(self, text):
        self.text = text
        m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", text, re.M)
        if not m:
            raise AssertionError(f"cannot parse wrk output:\n{text}")
        self.requests = int(m.group(1))
        m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
        self.requests_per_sec = float(m.group(1)) if m else 0.0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        self.socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                                      map(int, m.groups()))) if m else {}
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        self.non_2xx_3xx = int(m.group(1)) if m else 0
        m = re.search(r"LUA good=(\d+) bad=(\d+) first_bad=(.*)$", text, re.M)
        if not m:
            raise AssertionError(f"wrk Lua summary missing:\n{text}")
        self.good, self.bad, self.first_bad = int(m.group(1)), int(m.group(2)), m.group(3)


def assert_clean(testcase, w, min_requests):
    """No socket error of any kind, no non-2xx/3xx, every body as expected,
    and at least `min_requests` requests."""
    testcase.assertEqual(sum(w.socket_errors.values()), 0, f"socket errors {w.socket_errors}\n{w.text}")
    testcase.assertEqual(w.non_2xx_3xx, 0, w.text)
    testcase.assertEqual(w.bad, 0, f"unexpected responses, first: {w.first_bad}\n{w.text}")
    testcase.assertGreaterEqual(w.requests, min_requests, w.text)
    testcase.assertGreaterEqual(w.good, min_requests, w.text)
