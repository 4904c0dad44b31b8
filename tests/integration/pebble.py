"""Pebble (Debian's `pebble` package), the ACME test CA, with
pebble-challtestsrv as its DNS: every name resolves to 127.0.0.1.

The package ships no TLS files for Pebble's own HTTPS: a test CA (pki.Certs)
issues a leaf for localhost/127.0.0.1 here, and clients trust that CA for the
ACME endpoint. The *issuing* root is new on every start: root_pem() fetches
it from the management listener (GET /roots/0). Both processes are stopped
by PID."""

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pki
from common import START_TIMEOUT, STOP_TIMEOUT, add_cleanup, closed_port, require_tool


def _wait_port(port, proc, what, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} not listening on 127.0.0.1:{port} after {timeout}s")


def _stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


class Pebble:
    """Pebble on 127.0.0.1 validating HTTP-01 on `http_port` (where tlsedge's
    HTTP listener must be) and TLS-ALPN-01 on `tls_port` (tlsedge's HTTPS
    listener; default: a closed port). DNS-01 records are looked up in
    pebble-challtestsrv, whose management API (`challtestsrv_url`: POST
    /set-txt, /clear-txt) a DNS hook calls. `env`: PEBBLE_* stress settings. `validity`:
    certificateValidityPeriod in seconds (short-lived certificates). `eab_keys`:
    {kid: base64url MAC key}; given, every new account needs External
    Account Binding with one of them."""

    def __init__(self, testcase, workdir, http_port, env=None, tls_port=None,
                 validity=None, eab_keys=None):
        require_tool("pebble")
        require_tool("pebble-challtestsrv")
        self.dir = os.path.join(workdir, "pebble")
        os.makedirs(self.dir, exist_ok=True)
        self.tls_ca = pki.Certs(os.path.join(self.dir, "tls-ca"))
        leaf = self.tls_ca.leaf("pebble", ["localhost", "127.0.0.1"])
        self.ca_cert = self.tls_ca.ca_cert  # trust this for the ACME endpoint
        self.port = closed_port()
        self.management_port = closed_port()
        dns_port = closed_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": leaf.cert, "privateKey": leaf.key,
            "httpPort": http_port, "tlsPort": tls_port or closed_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        if validity is not None:
            config["pebble"]["certificateValidityPeriod"] = validity
        if eab_keys:
            config["pebble"]["externalAccountBindingRequired"] = True
            config["pebble"]["externalAccountMACKeys"] = dict(eab_keys)
        config_path = os.path.join(self.dir, "pebble.json")
        with open(config_path, "w") as f:
            json.dump(config, f)
        self.log_path = os.path.join(self.dir, "pebble.log")
        log = open(self.log_path, "wb")
        # DNS for Pebble's VA: A 127.0.0.1 for every name, no AAAA; TXT
        # records as set through the management API.
        challtestsrv_port = closed_port()
        self.challtestsrv_url = f"http://127.0.0.1:{challtestsrv_port}"
        self.dns = subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", f"127.0.0.1:{challtestsrv_port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        add_cleanup(testcase, _stop, self.dns)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            ["pebble", "-config", config_path, "-dnsserver", f"127.0.0.1:{dns_port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        log.close()
        add_cleanup(testcase, _stop, self.proc)
        _wait_port(self.port, self.proc, "pebble")
        _wait_port(self.management_port, self.proc, "pebble management")
        _wait_port(challtestsrv_port, self.dns, "pebble-challtestsrv management")
        self.directory = f"https://127.0.0.1:{self.port}/dir"

    def add_a(self, host, addresses):
        """Makes pebble-challtestsrv answer `host`'s A queries with `addresses`
        (instead of 127.0.0.1): Pebble then validates there."""
        body = json.dumps({"host": host.rstrip(".") + ".", "addresses": list(addresses)})
        req = urllib.request.Request(self.challtestsrv_url + "/add-a", data=body.encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def _get(self, path):
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        url = f"https://127.0.0.1:{self.management_port}{path}"
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.read().decode()

    def root_pem(self, index=0):
        """The root Pebble issues under (new on every start); index > 0:
        the alternate roots (PEBBLE_ALTERNATE_ROOTS)."""
        return self._get(f"/roots/{index}")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()
