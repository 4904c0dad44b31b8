"""The admin API on its Unix socket, with the real daemon: `tlsedge cert`
through it (and the same output as on the state directory), curl
--unix-socket, uploads served within a second (3 s sanitized), atomic --replace, refusals
that keep the old certificate serving, the socket's mode and life cycle
(stale file replaced, a second daemon refused, also one that may not
connect to it, removed at exit), a socket the CLI may not reach or where
nothing listens with --socket is an error, never another store (issue 15),
the body limit, and the private key never in a response or in the log."""

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import threading
import time
import types
import unittest

from clients import curl, peer_serial, s_client, s_client_leaf, tls_handshake
from common import START_TIMEOUT, make_tempdir, require_tool, run, tlsedge_bin
from config import base_config, respond_route, site, to_yaml
from daemon import Daemon, start_daemon
from pki import Certs

def raw_request(path, data, timeout=10):
    """Sends bytes on the Unix socket and reads until the daemon closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode("utf-8", "replace")
            out += chunk


def as_nobody():
    """The command prefix that runs a program as `nobody` (no groups, no
    capabilities): a user who may not connect to root's 0600 socket."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root to run a command as another user")
    return [require_tool("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def give_to_nobody(*paths):
    nobody = pwd.getpwnam("nobody")
    for path in paths:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


class AdminTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tempdir(cls)
        cls.certs = Certs(os.path.join(cls.tmp, "pki"))
        c = cls.certs
        cls.shop1 = c.leaf("shop1", ["shop.test"])
        cls.shop2 = c.leaf("shop2", ["shop.test"])
        cls.shop3 = c.leaf("shop3", ["shop.test"])
        cls.blog = c.leaf("blog", ["blog.test"], days=60)
        cls.cdn = c.leaf("cdn", ["cdn.test"], days=60)
        cls.issued_at = time.time()
        # The shop key, encrypted: refused (a daemon cannot type a passphrase).
        cls.encrypted_key = os.path.join(cls.tmp, "encrypted.key")
        run(["openssl", "pkey", "-in", cls.shop3.key, "-aes256", "-passout", "pass:secret",
             "-out", cls.encrypted_key], check=True)
        cls.garbage = os.path.join(cls.tmp, "garbage.pem")
        with open(cls.garbage, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                    "-----END CERTIFICATE-----\n")
        cls.key_lines = set()
        for leaf in (cls.shop1, cls.shop2, cls.shop3, cls.blog):
            with open(leaf.key) as f:
                cls.key_lines.update(l for l in f.read().splitlines()
                                     if l and not l.startswith("-----"))

    def setUp(self):
        self.dir = make_tempdir(self)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.sock = os.path.join(self.state, "admin.sock")
        self.cfg = base_config(
            self.state,
            certificates={"cdn": self.cdn},
            default_certificate="cdn",
            sites=[site("shop", ["shop.test"], [respond_route("/", 200, "shop\n")]),
                   site("blog", ["blog.test"], [respond_route("/", 200, "blog\n")])])
        self.config_path = os.path.join(self.dir, "tlsedge.yaml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.cfg))
        self.outputs = []  # every response text, checked for key material

    def cert(self, *args, ok=True):
        res = run([tlsedge_bin(), "cert", *args, "-c", self.config_path], timeout=60)
        self.outputs += [res.stdout, res.stderr]
        if ok:
            self.assertEqual(res.returncode, 0, f"cert {' '.join(args)} failed\n"
                                                f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}")
        else:
            self.assertEqual(res.returncode, 1, f"cert {' '.join(args)} should fail\n"
                                                f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}")
        return res

    def add(self, name, leaf, *extra, ok=True):
        return self.cert("add", name, "--cert", leaf.cert, "--key", leaf.key, *extra, ok=ok)

    def serial(self, port, sni="shop.test"):
        _, _, _, cert = tls_handshake(port, sni, ca=self.certs.ca_cert)
        return peer_serial(cert)

    def which_serial(self, host="shop.test"):
        return int(json.loads(self.cert("which", host, "--json").stdout)["serial"], 16)

    def assert_no_key(self, daemon):
        texts = self.outputs + [daemon.log()]
        for line in self.key_lines:
            for text in texts:
                self.assertNotIn(line, text)

    def test_cert_commands_through_the_daemon(self):
        daemon = start_daemon(self, self.dir, self.cfg)
        port = daemon.https_port
        st = os.stat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(self.serial(port), self.cdn.serial)  # nothing covers shop.test yet

        # add through the daemon: served by the time the answer comes (the
        # validated credentials are applied before it is sent; no file watch,
        # no debounce): `which` and a handshake see it at once, no waiting.
        res = self.cert("add", "shop-a", "--cert", self.shop1.cert, "--key", self.shop1.key, "-v")
        self.assertIn("through the daemon on " + self.sock, res.stderr)
        self.assertIn("added `shop-a`", res.stdout)
        leaf = s_client_leaf(s_client(port, "shop.test", ca=self.certs.ca_cert))[0]
        self.assertEqual(leaf, self.shop1.serial, "openssl s_client did not see the upload")
        self.assertEqual(self.which_serial(), self.shop1.serial)
        key_file = os.path.join(self.state, "certs", "shop-a", "privkey.pem")
        self.assertEqual(stat.S_IMODE(os.stat(key_file).st_mode), 0o600)

        # The same output through the daemon as on the state directory. A leaf
        # issued for whole days shows N days left only within the second it was
        # issued (notAfter - now is then exactly N days), N-1 afterwards for a day:
        # compare once that flip is behind us, not across it.
        time.sleep(max(0.0, self.issued_at + 2.0 - time.time()))
        for args in (("list",), ("list", "--json"), ("show", "shop-a"),
                     ("show", "shop-a", "--json"), ("which", "shop.test"),
                     ("which", "blog.test", "--json")):
            live = self.cert(*args).stdout
            offline = self.cert(*args, "--offline").stdout
            self.assertEqual(live, offline, args)
        self.assertRegex(self.cert("list").stdout, r"shop-a\s+shop\.test\s+shop\s")
        self.assertIn("on the state directory", self.cert("list", "--offline", "-v").stderr)

        # --replace is atomic: handshakes during it all succeed, old or new.
        seen, errors, done = [], [], threading.Event()

        def handshakes():
            while not done.is_set():
                try:
                    seen.append(self.serial(port))
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    errors.append(repr(e))
        t = threading.Thread(target=handshakes)
        t.start()
        try:
            time.sleep(0.2)
            self.assertIn("replaced `shop-a`", self.add("shop-a", self.shop2, "--replace").stdout)
            self.assertEqual(self.serial(port), self.shop2.serial)  # at once
            time.sleep(0.2)  # the thread's handshakes after the replace
        finally:
            done.set()
            t.join(timeout=30)
        self.assertEqual(errors, [])
        self.assertEqual(set(seen) - {self.shop1.serial, self.shop2.serial}, set())
        self.assertEqual(seen[-1], self.shop2.serial)
        self.assertEqual(self.which_serial(), self.shop2.serial)

        # Bad uploads: the validation message; the current certificate keeps serving.
        for chain, key, message in (
                (self.shop3.cert, self.blog.key, "does not match the leaf certificate"),
                (self.garbage, self.shop3.key, self.garbage),
                (self.shop3.cert, self.encrypted_key, "encrypted")):
            res = self.cert("add", "shop-a", "--cert", chain, "--key", key, "--replace", ok=False)
            self.assertIn(message, res.stderr)
        res = self.add("shop-a", self.shop3, ok=False)  # exists, no --replace
        self.assertIn("already exists", res.stderr)
        time.sleep(0.3)  # past the watcher's debounce: nothing was published
        self.assertEqual(self.serial(port), self.shop2.serial)
        self.assertEqual(self.which_serial(), self.shop2.serial)

        # rm: refused while a site uses it, naming the site; then allowed.
        self.add("blog-a", self.blog)
        res = self.cert("rm", "shop-a", ok=False)
        self.assertIn("in use by site `shop`", res.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.state, "certs", "shop-a")))
        self.cert("show", "nope", ok=False)

        # curl --unix-socket: the same API, JSON errors.
        out = curl(["--unix-socket", self.sock, "http://tlsedge/v1/certificates"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([e["name"] for e in json.loads(out.stdout)], ["blog-a", "shop-a"])
        out = curl(["--unix-socket", self.sock, "-w", "\n%{http_code}",
                    "http://tlsedge/v1/which?host=shop.test"])
        body, _, code = out.stdout.rpartition("\n")
        self.assertEqual(code, "200")
        self.assertEqual(int(json.loads(body)["serial"], 16), self.shop2.serial)
        out = curl(["--unix-socket", self.sock, "-w", "\n%{http_code}", "-X", "DELETE",
                    "http://tlsedge/v1/certificates/shop-a"])
        body, _, code = out.stdout.rpartition("\n")
        self.assertEqual(code, "409")
        self.assertIn("in use by site `shop`", json.loads(body)["error"])
        # An upload with curl (over 1 KiB: curl sends Expect: 100-continue).
        upload = os.path.join(self.dir, "upload.json")
        with open(self.shop3.cert) as c, open(self.shop3.key) as k:
            text = json.dumps({"chain": c.read(), "key": k.read(), "replace": True})
        with open(upload, "w") as f:
            f.write(text)
        out = curl(["--unix-socket", self.sock, "-w", "\n%{http_code}", "-X", "PUT",
                    "--data-binary", "@" + upload, "http://tlsedge/v1/certificates/shop-a"])
        body, _, code = out.stdout.rpartition("\n")
        self.outputs.append(out.stdout)
        self.assertEqual(code, "200", out.stdout + out.stderr)
        self.assertTrue(json.loads(body)["replaced"])
        self.assertEqual(self.which_serial(), self.shop3.serial)

        # `which` answers from what the daemon serves, not from the files:
        # a config bound differently on disk but not reloaded changes nothing.
        changed = dict(self.cfg)
        changed["sites"] = [site("shop", ["shop.test"], [respond_route("/", 200, "x\n")], "cdn"),
                            self.cfg["sites"][1]]
        with open(self.config_path, "w") as f:
            f.write(to_yaml(changed))
        self.assertEqual(self.which_serial(), self.shop3.serial)
        offline = json.loads(self.cert("which", "shop.test", "--json", "--offline").stdout)
        self.assertEqual(int(offline["serial"], 16), self.cdn.serial)

        self.assert_no_key(daemon)
        daemon.stop()
        self.assertFalse(os.path.exists(self.sock), "socket file left after a clean exit")

    def test_limits_and_slow_clients(self):
        start_daemon(self, self.dir, self.cfg)
        # A client that sends half a request and stalls blocks nobody.
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(stalled.close)
        stalled.connect(self.sock)
        stalled.sendall(b"GET /v1/certificates HTTP/1.1\r\nHo")
        self.assertIn("no certificates in", self.cert("list").stdout)

        # Body over 1 MiB: 413 from the declared length, then closed.
        reply = raw_request(self.sock, b"PUT /v1/certificates/x HTTP/1.1\r\nHost: a\r\n"
                                       b"Content-Length: 2000000\r\n\r\n")
        self.assertTrue(reply.startswith("HTTP/1.1 413 "), reply)
        self.assertIn("request body over 1048576 bytes", reply)
        # ... and from a chunked body that grows past it.
        chunk = b"x" * 65536
        data = (b"PUT /v1/certificates/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (b"10000\r\n" + chunk + b"\r\n") * 17)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.sock)
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed after the answer
            reply = s.recv(65536).decode()
        self.assertTrue(reply.startswith("HTTP/1.1 413 "), reply)
        # Malformed and unknown requests get JSON errors.
        reply = raw_request(self.sock, b"BLAH\r\n\r\n")
        self.assertTrue(reply.startswith("HTTP/1.1 400 "), reply)
        reply = raw_request(self.sock, b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertTrue(reply.startswith("HTTP/1.1 404 "), reply)
        self.assertIn('{"error":', reply)
        # Keep-alive: two requests on one connection, answered in order.
        reply = raw_request(self.sock, b"GET /v1/certificates HTTP/1.1\r\nHost: a\r\n\r\n"
                                       b"GET /v1/which?host=blog.test HTTP/1.1\r\nHost: a\r\n"
                                       b"Connection: close\r\n\r\n")
        self.assertEqual(reply.count("HTTP/1.1 200 OK"), 2, reply)
        self.assertIn('"certificate":"cdn"', reply)

    def test_stale_socket_replaced_and_second_daemon_refused(self):
        # A socket file nobody listens on (left by a crash).
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.sock)
        stale.close()
        self.assertTrue(stat.S_ISSOCK(os.stat(self.sock).st_mode))
        daemon = start_daemon(self, self.dir, self.cfg)
        self.assertTrue(any("removing a stale socket file" in l for l in daemon.lines()),
                        daemon.log())
        self.assertIn("no certificates in", self.cert("list").stdout)

        # A second daemon on the same socket refuses to start, and leaves the
        # first one's socket in place.
        second = Daemon(self.dir, self.cfg, name="second")
        try:
            res = subprocess.run([tlsedge_bin(), "run", "-c", second.config_path],
                                 capture_output=True, timeout=30, cwd=self.dir)
        except subprocess.TimeoutExpired:
            self.fail("the second daemon did not refuse to start")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("another tlsedge is running on admin socket " + self.sock,
                      res.stdout.decode() + res.stderr.decode())
        self.assertIn("no certificates in", self.cert("list").stdout)
        daemon.stop()
        self.assertFalse(os.path.exists(self.sock))

    def test_a_socket_the_user_may_not_reach_is_an_error(self):
        """Issue 15: `permission denied` on the daemon's 0600 socket is not
        "no daemon": no fallback into ./tlsedge-state, no false success."""
        nobody = as_nobody()
        daemon = start_daemon(self, self.dir, self.cfg)
        os.chmod(self.dir, 0o755)  # the socket itself refuses, not the path to it
        os.chmod(self.state, 0o755)
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o600)
        cwd = make_tempdir(self)  # where a fallback would write ./tlsedge-state
        os.chmod(cwd, 0o777)
        chain, key = os.path.join(cwd, "chain.pem"), os.path.join(cwd, "key.pem")
        shutil.copy(self.shop1.cert, chain)
        shutil.copy(self.shop1.key, key)
        give_to_nobody(chain, key)
        # A configuration nobody can read, whose admin.socket is the daemon's.
        config_path = os.path.join(cwd, "nobody.yaml")
        with open(config_path, "w") as f:
            f.write(to_yaml(base_config(self.state, sites=self.cfg["sites"])))
        os.chmod(config_path, 0o644)

        def cli(*args):
            res = run([*nobody, tlsedge_bin(), *args], timeout=60, cwd=cwd)
            self.outputs += [res.stdout, res.stderr]
            self.assertEqual(res.returncode, 1, f"{' '.join(args)}\nstdout:\n{res.stdout}\n"
                                                f"stderr:\n{res.stderr}")
            self.assertIn(f"admin socket {self.sock}: cannot connect: Permission denied",
                          res.stderr)
            self.assertEqual(res.stdout, "")
            self.assertFalse(os.path.exists(os.path.join(cwd, "tlsedge-state")), args)
            return res

        add = ("add", "shop-x", "--cert", chain, "--key", key)
        res = cli("cert", *add, "--socket", self.sock)
        self.assertIn("with --socket the command goes through that daemon only", res.stderr)
        cli("cert", "list", "--socket", self.sock)
        cli("cert", "list", "--socket", self.sock, "--json")
        res = cli("cert", *add, "-c", config_path)  # the socket from the configuration
        self.assertIn("not working on the state directory " + self.state, res.stderr)
        cli("cert", "list", "-c", config_path)
        cli("acme", "status", "--socket", self.sock)
        cli("acme", "status", "-c", config_path)
        cli("acme", "renew", "shop", "--socket", self.sock)
        # The daemon never saw it, and its store does not hold it.
        self.assertNotIn("shop-x", self.cert("list", "-v").stdout)
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs", "shop-x")))
        self.assert_no_key(daemon)

    def test_explicit_socket_where_nothing_listens_is_an_error(self):
        cwd = make_tempdir(self)
        missing = os.path.join(self.dir, "missing.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.sock)
        stale.close()
        for path, reason in ((missing, "No such file or directory"),
                             (self.sock, "Connection refused")):
            for args in (("cert", "add", "shop-x", "--cert", self.shop1.cert, "--key",
                          self.shop1.key), ("cert", "list"), ("acme", "status")):
                res = run([tlsedge_bin(), *args, "--socket", path], timeout=60, cwd=cwd)
                self.assertEqual(res.returncode, 1, f"{args} {path}\n{res.stdout}{res.stderr}")
                self.assertIn(f"admin socket {path}: cannot connect: {reason}", res.stderr)
                self.assertEqual(res.stdout, "")
                self.assertEqual(os.listdir(cwd), [], args)  # no ./tlsedge-state
        self.assertFalse(os.path.exists(os.path.join(self.state, "certs")))

    def test_start_refused_on_a_socket_it_may_not_reach(self):
        """A socket another user's daemon listens on, in a directory anyone
        may write: a second daemon that may not connect to it cannot tell it
        from a stale one, so it refuses to start and leaves it in place."""
        nobody = as_nobody()
        shared = make_tempdir(self)
        os.chmod(shared, 0o777)
        sock = os.path.join(shared, "admin.sock")
        cfg = dict(self.cfg)
        cfg["admin"] = {"socket": sock}
        daemon = start_daemon(self, self.dir, cfg)
        inode = os.stat(sock).st_ino

        mine = make_tempdir(self)
        os.chmod(mine, 0o755)
        state = os.path.join(mine, "state")
        os.makedirs(state)
        cdn = types.SimpleNamespace(cert=os.path.join(mine, "cdn.pem"),
                                    key=os.path.join(mine, "cdn.key"))
        shutil.copy(self.cdn.cert, cdn.cert)
        shutil.copy(self.cdn.key, cdn.key)
        give_to_nobody(state, cdn.cert, cdn.key)
        theirs = base_config(state, certificates={"cdn": cdn}, default_certificate="cdn",
                             sites=self.cfg["sites"])
        theirs["admin"] = {"socket": sock}
        second = Daemon(mine, theirs, name="nobody")
        try:
            res = run([*nobody, tlsedge_bin(), "run", "-c", second.config_path],
                      timeout=START_TIMEOUT, cwd=mine)
        except subprocess.TimeoutExpired:
            self.fail("the daemon running as nobody took over the admin socket and started")
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn(f"admin socket {sock}: cannot connect: Permission denied; cannot tell "
                      "whether a daemon listens there, not replacing it", res.stdout + res.stderr)
        self.assertEqual(os.stat(sock).st_ino, inode)
        res = self.cert("list", "--socket", sock, "-v")
        self.assertIn("through the daemon on " + sock, res.stderr)
        daemon.stop()
        self.assertFalse(os.path.exists(sock))

    def test_socket_path_changes_at_restart(self):
        daemon = start_daemon(self, self.dir, self.cfg)
        moved = dict(self.cfg)
        moved["admin"] = {"socket": os.path.join(self.dir, "moved.sock")}
        lines = daemon.reload(moved)
        self.assertTrue(any("admin.socket changes at the next restart" in l for l in lines),
                        daemon.log())
        self.assertFalse(os.path.exists(os.path.join(self.dir, "moved.sock")))
        res = self.cert("list", "--socket", self.sock, "-v")
        self.assertIn("through the daemon on " + self.sock, res.stderr)

    def test_admin_off(self):
        cfg = dict(self.cfg)
        cfg["admin"] = {"socket": ""}
        start_daemon(self, self.dir, cfg)
        self.assertFalse(os.path.exists(self.sock))


if __name__ == "__main__":
    unittest.main()
