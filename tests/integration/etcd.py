"""A real etcd cluster (Debian's `etcd-server`, 3.4) on 127.0.0.1, for
fleet-mode tests: N members on free loopback ports (client and peer), each
with its own data directory and log file in the work directory, a cluster
token of its own, stopped by PID. Optional client TLS (`--client-cert-auth`)
with certificates from a pki.Certs CA. Small helpers over the v3 JSON gateway
(POST /v3/..., bytes as base64, int64 as strings; docs/etcd.md) let a test
look at what tlsedge wrote, or arrange what it should find.

Peers talk plain HTTP on loopback even when clients use TLS."""

import base64
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pki
from common import STOP_TIMEOUT, add_cleanup, closed_port, require_tool

READY_TIMEOUT = 15.0   # until every member's /health says true
REQUEST_TIMEOUT = 10.0  # a write to a follower that missed a leader loss hangs 7 s (docs/etcd.md §3)
PAGE = 1000            # keys per range page (docs/etcd.md §5)


def b64(data):
    """bytes (or str, as UTF-8) -> the gateway's base64 text."""
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text) if text else b""


def prefix_end(prefix):
    """The range_end that makes [prefix, end) every key starting with
    `prefix`: its last byte below 0xff incremented; b"\\0" (to the end of the
    keyspace) for an empty or all-0xff prefix."""
    p = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return b"\0"
    p[-1] += 1
    return bytes(p)


class EtcdError(Exception):
    """An HTTP error answer from the gateway: `status`, and from the JSON
    body (`{"error","message","code"}`) the gRPC `code` and `message`."""

    def __init__(self, url, status, body):
        self.url = url
        self.status = status
        self.body = body
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        self.code = doc.get("code") if isinstance(doc, dict) else None
        self.message = (doc.get("message") or doc.get("error")) if isinstance(doc, dict) else None
        super().__init__(f"{url}: HTTP {status}: {body[:500]!r}")


class Member:
    """One etcd member: its name, URLs, data directory, log and process."""

    def __init__(self, index, name, client_port, peer_port, scheme, data_dir, log_path):
        self.index = index
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.client_url = f"{scheme}://127.0.0.1:{client_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.member_id = None  # int, from the first status answer

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=30):
        return "\n".join(self.log().splitlines()[-lines:])

    def __repr__(self):
        state = f"pid {self.pid}" if self.running() else "not running"
        return f"Member({self.name}, {self.client_url}, {state})"


class EtcdCluster:
    """`members` etcd members on 127.0.0.1, started and waited for (every
    /health {"health":"true"}, bounded) in `workdir`/etcd. `tls`: None (plain
    HTTP), True (a CA of its own) or a pki.Certs to issue from; then the
    members serve https with `--client-cert-auth`, and `ca_cert`,
    `client_cert`, `client_key` are what a client needs. A context manager;
    `start_etcd` registers `stop` with a test's cleanups instead."""

    def __init__(self, workdir, members=3, tls=None, ready_timeout=READY_TIMEOUT,
                 extra_args=()):
        self.binary = require_tool("etcd")
        self.dir = os.path.join(workdir, "etcd")
        os.makedirs(self.dir, exist_ok=True)
        self.token = f"tlsedge-it-{uuid.uuid4().hex[:12]}"
        self.extra_args = list(extra_args)
        self.ca_cert = self.client_cert = self.client_key = None
        self.server_leaf = self.client_leaf = None
        self._ssl = None
        if tls:
            certs = tls if isinstance(tls, pki.Certs) else pki.Certs(os.path.join(self.dir, "ca"))
            # serverAuth AND clientAuth: the gateway dials its own member's
            # gRPC port with this certificate (docs/etcd.md §1).
            self.server_leaf = certs.leaf(f"etcd-server-{self.token}", ["127.0.0.1", "localhost"],
                                          eku="serverAuth,clientAuth")
            self.client_leaf = certs.leaf(f"etcd-client-{self.token}", ["etcd-client"],
                                          eku="clientAuth")
            self.ca_cert = certs.ca_cert
            self.client_cert = self.client_leaf.cert
            self.client_key = self.client_leaf.key
            self._ssl = ssl.create_default_context(cafile=self.ca_cert)
            self._ssl.load_cert_chain(self.client_cert, self.client_key)
        scheme = "https" if tls else "http"
        self.members = [
            Member(i, f"m{i}", closed_port(), closed_port(), scheme,
                   os.path.join(self.dir, f"m{i}"), os.path.join(self.dir, f"m{i}.log"))
            for i in range(members)]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        try:
            for m in self.members:
                self._spawn(m)
            self.wait_healthy(timeout=ready_timeout)
        except BaseException:
            self.stop(settle=False)
            raise

    # -- processes ---------------------------------------------------------

    def _command(self, m):
        cmd = [self.binary, "--name", m.name, "--data-dir", m.data_dir,
               "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
               "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
               "--initial-cluster", self.initial_cluster,
               # Also on a restart: with a data directory, etcd ignores the
               # initial-cluster flags and rejoins as the member it was.
               "--initial-cluster-state", "new", "--initial-cluster-token", self.token]
        if self.server_leaf:
            cmd += ["--cert-file", self.server_leaf.cert, "--key-file", self.server_leaf.key,
                    "--trusted-ca-file", self.ca_cert, "--client-cert-auth"]
        return cmd + self.extra_args

    def _spawn(self, m):
        # etcd reads ETCD_* variables as flags: none from the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
        with open(m.log_path, "ab") as log:
            log.write(f"=== tlsedge test: starting {m.name} at {time.time():.3f}\n".encode())
            log.flush()
            m.proc = subprocess.Popen(self._command(m), stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env=env)

    def _logs(self, members=None):
        return "\n".join(f"--- {m.name} ({m.log_path}), last lines:\n{m.log_tail()}"
                         for m in (members or self.members))

    def wait_healthy(self, indexes=None, timeout=READY_TIMEOUT):
        """Waits (bounded) until each member in `indexes` (default: all)
        answers GET /health with {"health":"true"}; fails with their log
        tails if one exits or the time runs out. Returns the seconds waited."""
        ms = [self.members[i] for i in indexes] if indexes is not None else self.members
        start = time.monotonic()
        deadline = start + timeout
        pending = list(ms)
        last = {}
        while pending:
            for m in list(pending):
                if not m.running():
                    code = m.proc.returncode if m.proc else None
                    raise AssertionError(f"etcd {m.name} exited with status {code}\n"
                                         + self._logs(ms))
                try:
                    left = min(2.0, max(0.1, deadline - time.monotonic()))
                    status, body = self._request(m, "GET", "/health", None, timeout=left)
                    last[m.name] = (status, body)
                    if json.loads(body).get("health") == "true":
                        pending.remove(m)
                except (OSError, ValueError) as e:
                    last[m.name] = repr(e)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"etcd not healthy after {timeout}s: "
                    + ", ".join(f"{m.name}: {last.get(m.name)}" for m in pending)
                    + "\n" + self._logs(ms))
            time.sleep(0.05)
        return time.monotonic() - start

    def kill(self, i, sig=signal.SIGKILL, timeout=STOP_TIMEOUT):
        """Sends `sig` to member i's PID. For a signal that ends it (not
        SIGSTOP/SIGCONT), waits (bounded) for the exit and returns the
        status (-9 for SIGKILL)."""
        m = self.members[i]
        if not m.running():
            raise AssertionError(f"etcd {m.name} is not running")
        os.kill(m.pid, sig)
        if sig in (signal.SIGSTOP, signal.SIGCONT, signal.SIGTSTP):
            return None
        try:
            return m.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(m.pid, signal.SIGKILL)
            m.proc.wait(timeout=10)
            raise AssertionError(f"etcd {m.name} did not exit within {timeout}s of signal "
                                 f"{sig} (SIGKILLed)\n{m.log_tail()}")

    def start(self, *indexes, timeout=READY_TIMEOUT):
        """Restarts the members `indexes` (killed or stopped) on their data
        directories, with the same flags, all at once (a member alone has no
        quorum when the others are down too), and waits (bounded) until
        their /health is true. Returns the seconds waited."""
        for i in indexes:
            m = self.members[i]
            if m.running():
                raise AssertionError(f"etcd {m.name} is still running (pid {m.pid})")
        for i in indexes:
            self._spawn(self.members[i])
        return self.wait_healthy(list(indexes), timeout=timeout)

    def _active_peers(self, m):
        """How many peers member m's raft transport counts as active
        (etcd_network_active_peers on its /metrics)."""
        _, body = self._request(m, "GET", "/metrics", None, timeout=0.5)
        return sum(1 for line in body.decode("utf-8", "replace").splitlines()
                   if line.startswith("etcd_network_active_peers{")
                   and float(line.rsplit(" ", 1)[1]) > 0)

    def stop(self, timeout=STOP_TIMEOUT, settle=True):
        """Stops every running member by PID, one after another: SIGTERM,
        wait (one bounded deadline for all), SIGKILL if still there.
        Idempotent; returns the names that had to be SIGKILLed.

        A leader hands its leadership over when SIGTERMed, and waits etcd's
        request timeout (7 s) when the peer it picked has just exited but
        still counts as active. So, one member at a time, and before each
        SIGTERM a short bounded wait (up to 2 s, normally a few ms) until
        the member no longer counts the ones already stopped as active
        peers (`settle=False`: no such wait, as after a failed start). A
        SIGTERMed member exits with status -15 (etcd re-raises the
        signal)."""
        deadline = time.monotonic() + timeout
        killed = []
        for m in self.members:
            if not m.running():
                continue
            others = sum(1 for o in self.members if o is not m and o.running())
            settle_until = min(deadline, time.monotonic() + 2.0)
            while settle and time.monotonic() < settle_until:
                try:
                    if self._active_peers(m) <= others:
                        break
                except (OSError, ValueError):
                    break  # not answering (SIGSTOPped, starting): just stop it
                time.sleep(0.01)
            os.kill(m.pid, signal.SIGTERM)
            os.kill(m.pid, signal.SIGCONT)  # in case a test SIGSTOPped it
            try:
                m.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(m.pid, signal.SIGKILL)
                m.proc.wait(timeout=10)
                killed.append(m.name)
        return killed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- members -----------------------------------------------------------

    @property
    def endpoints(self):
        """Every member's client URL, e.g. ["http://127.0.0.1:40001", ...]."""
        return [m.client_url for m in self.members]

    def member(self, i):
        """Member i (a Member: name, client_url, peer_url, client_port,
        peer_port, data_dir, log_path, pid, running(), log(), and
        member_id once a status call has seen it)."""
        return self.members[i]

    def running(self):
        """Indexes of the members whose process is alive."""
        return [m.index for m in self.members if m.running()]

    def status(self, i, timeout=2):
        """Member i's POST /v3/maintenance/status answer (a dict)."""
        answer = self.post("/v3/maintenance/status", {}, member=i, timeout=timeout)
        self.members[i].member_id = int(answer["header"]["member_id"])
        return answer

    def leader(self, timeout=READY_TIMEOUT):
        """The index of the leader: a running member whose status names
        itself (leader == header.member_id) and every other running member
        that answers agrees. Waits (bounded) through an election."""
        deadline = time.monotonic() + timeout
        seen = {}
        while True:
            claims, views = [], {}
            for i in self.running():
                try:
                    st = self.status(i)
                except (OSError, EtcdError) as e:
                    seen[i] = repr(e)
                    continue
                seen[i] = st.get("leader", "0")
                views[i] = int(st.get("leader", "0"))
                if views[i] == self.members[i].member_id:
                    claims.append(i)
            if len(claims) == 1:
                lid = self.members[claims[0]].member_id
                if all(v == lid for v in views.values()):
                    return claims[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no agreed etcd leader after {timeout}s: {seen}\n"
                                     + self._logs())
            time.sleep(0.05)

    # -- the JSON gateway --------------------------------------------------

    def ssl_context(self):
        """The client TLS context (CA + client certificate), None without TLS."""
        return self._ssl

    def _request(self, m, method, path, body, timeout):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(m.client_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ssl) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.read()

    def _pick(self, member):
        if member is not None:
            return self.members[member]
        for m in self.members:
            if m.running():
                return m
        raise AssertionError("no etcd member is running")

    def post(self, path, body, member=None, timeout=REQUEST_TIMEOUT):
        """POST `body` (a dict, sent as JSON) to `path` (e.g. "/v3/kv/txn")
        on member `member` (default: the first running one); returns the
        parsed answer, raises EtcdError for an HTTP error status."""
        m = self._pick(member)
        status, raw = self._request(m, "POST", path, body, timeout)
        if status != 200:
            raise EtcdError(m.client_url + path, status, raw.decode("utf-8", "replace"))
        return json.loads(raw)

    def put(self, key, value, lease=None, member=None):
        """Puts key = value (bytes; str as UTF-8), attached to lease ID
        `lease` if given. Returns the new store revision."""
        body = {"key": b64(key), "value": b64(value)}
        if lease is not None:
            body["lease"] = str(lease)
        return int(self.post("/v3/kv/put", body, member=member)["header"]["revision"])

    def get(self, key, member=None):
        """The value of `key` (bytes), None if absent."""
        kvs = self.post("/v3/kv/range", {"key": b64(key)}, member=member).get("kvs")
        return unb64(kvs[0].get("value")) if kvs else None

    def range_prefix(self, prefix, page=PAGE, member=None):
        """[(key, value)] of every key starting with `prefix`, in key order,
        read in pages of `page` at the revision of the first page."""
        end = b64(prefix_end(prefix))
        key = prefix.encode() if isinstance(prefix, str) else prefix
        key = key or b"\0"
        out, rev = [], None
        while True:
            body = {"key": b64(key), "range_end": end, "limit": page}
            if rev is not None:
                body["revision"] = rev
            answer = self.post("/v3/kv/range", body, member=member)
            if rev is None:
                rev = answer["header"]["revision"]
            kvs = answer.get("kvs", [])
            out += [(unb64(kv["key"]), unb64(kv.get("value"))) for kv in kvs]
            if not answer.get("more") or not kvs:
                return out
            key = out[-1][0] + b"\0"

    def delete_prefix(self, prefix, member=None):
        """Deletes every key starting with `prefix`; returns how many."""
        key = prefix.encode() if isinstance(prefix, str) else prefix
        answer = self.post("/v3/kv/deleterange",
                           {"key": b64(key or b"\0"), "range_end": b64(prefix_end(prefix))},
                           member=member)
        return int(answer.get("deleted", "0"))

    def compact(self, revision, physical=True, member=None):
        """Compacts the history up to `revision`."""
        self.post("/v3/kv/compaction", {"revision": str(revision), "physical": physical},
                  member=member)

    def revision(self, member=None):
        """The current store revision (a linearizable read)."""
        answer = self.post("/v3/kv/range", {"key": b64(b"\0"), "count_only": True},
                           member=member)
        return int(answer["header"]["revision"])

    def lease_grant(self, ttl, member=None):
        """A new lease of `ttl` seconds; returns its ID (an int, often > 2^53)."""
        return int(self.post("/v3/lease/grant", {"TTL": str(ttl)}, member=member)["ID"])

    def leases(self, member=None):
        """The IDs (ints) of every live lease."""
        answer = self.post("/v3/lease/leases", {}, member=member)
        return [int(lease["ID"]) for lease in answer.get("leases", [])]


def start_etcd(testcase_or_class, workdir, **options):
    """An EtcdCluster whose stop is registered with the test's (or the
    class's) cleanups."""
    cluster = EtcdCluster(workdir, **options)
    add_cleanup(testcase_or_class, cluster.stop)
    return cluster
