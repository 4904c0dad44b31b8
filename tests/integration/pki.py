"""A throw-away test CA and leaf certificates (ECDSA P-256 by default),
generated with the openssl CLI, and reading certificates back with it."""

import ipaddress
import os
import random

from common import require_tool, run


def _san(name):
    """A subjectAltName entry: IP:... for an IP address literal, else DNS:..."""
    try:
        ipaddress.ip_address(name)
        return f"IP:{name}"
    except ValueError:
        return f"DNS:{name}"


class Leaf:
    """A generated leaf certificate: files and the values tests compare."""

    def __init__(self, name, names, cert, key, serial, subject_cn):
        self.name = name              # label given by the test
        self.names = list(names)      # subjectAltName DNS names
        self.cert = cert              # PEM path (leaf only)
        self.key = key                # PEM path (PKCS#8)
        self.serial = serial          # int
        self.subject_cn = subject_cn  # str or None (names > 64 chars)

    def __repr__(self):
        return f"Leaf({self.name!r}, serial={self.serial:#x}, cn={self.subject_cn!r})"


_REQ_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
O = tlsedge integration tests
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""


class Certs:
    """A test CA in `directory` and leaves signed by it."""

    def __init__(self, directory):
        require_tool("openssl")
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        self._cnf = os.path.join(self.dir, "req.cnf")
        with open(self._cnf, "w") as f:
            f.write(_REQ_CNF)
        self._serials = set()
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self._genkey(self.ca_key, "ec")
        self.ca_serial = self._new_serial()
        run(["openssl", "req", "-x509", "-new", "-config", self._cnf, "-extensions", "v3_ca",
             "-key", self.ca_key, "-subj", "/O=tlsedge integration tests/CN=tlsedge test CA",
             "-days", "3", "-sha256", "-set_serial", str(self.ca_serial),
             "-out", self.ca_cert], check=True)

    def _new_serial(self):
        # Positive, 63 bits, never 0, distinct within this CA.
        for _ in range(100):
            s = random.SystemRandom().getrandbits(63) | (1 << 40)
            if s not in self._serials:
                self._serials.add(s)
                return s
        raise AssertionError("could not draw a fresh serial")

    def _genkey(self, path, key_type):
        if key_type == "ec":
            cmd = ["openssl", "genpkey", "-algorithm", "EC",
                   "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path]
        elif key_type == "rsa":
            cmd = ["openssl", "genpkey", "-algorithm", "RSA",
                   "-pkeyopt", "rsa_keygen_bits:2048", "-out", path]
        else:
            raise ValueError(key_type)
        run(cmd, check=True)
        os.chmod(path, 0o600)

    def leaf(self, name, names, key_type="ec", days=3, eku="serverAuth"):
        """Issues a leaf for `names`: DNS names (wildcards allowed) or IP
        address literals (IP subjectAltNames). The subject CN is the first
        name when it fits (<= 64 characters), else absent. `eku`: its
        extendedKeyUsage ("clientAuth" for a client certificate,
        "serverAuth,clientAuth" for one used both ways, as etcd's is)."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        key = os.path.join(d, "privkey.pem")
        csr = os.path.join(d, "leaf.csr")
        self._genkey(key, key_type)
        cn = names[0] if len(names[0]) <= 64 else None
        subj = "/O=tlsedge integration tests" + (f"/CN={cn}" if cn else "")
        run(["openssl", "req", "-new", "-config", self._cnf, "-key", key, "-subj", subj,
             "-out", csr], check=True)
        cert, serial = self.sign_csr(name, csr, names, key_type, days, eku)
        return Leaf(name, names, cert, key, serial, cn)

    def sign_csr(self, name, csr, names, key_type="ec", days=3, eku="serverAuth"):
        """Signs the CSR file `csr` as the CA would (what a commercial CA
        sends back for `tlsedge cert request`): a leaf for `names` in
        <dir>/<name>/fullchain.pem. Returns (that path, serial)."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        cert = os.path.join(d, "fullchain.pem")
        ext = os.path.join(d, "ext.cnf")
        ku = "digitalSignature" + (",keyEncipherment" if key_type == "rsa" else "")
        with open(ext, "w") as f:
            f.write("[v3_leaf]\n"
                    "basicConstraints = critical,CA:FALSE\n"
                    f"keyUsage = critical,{ku}\n"
                    f"extendedKeyUsage = {eku}\n"
                    "subjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid\n"
                    "subjectAltName = " + ",".join(_san(n) for n in names) + "\n")
        serial = self._new_serial()
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
             "-set_serial", str(serial), "-days", str(days), "-sha256",
             "-extfile", ext, "-extensions", "v3_leaf", "-out", cert], check=True)
        return cert, serial


def self_signed(directory, names, days=3):
    """A self-signed ECDSA P-256 server certificate for `names` (no CA
    behind it), as a Leaf with serial 0 in `directory`."""
    require_tool("openssl")
    os.makedirs(directory, exist_ok=True)
    key = os.path.join(directory, "privkey.pem")
    cert = os.path.join(directory, "cert.pem")
    ext = os.path.join(directory, "req.cnf")
    with open(ext, "w") as f:
        f.write("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"
                f"O = tlsedge integration tests\nCN = {names[0]}\n"
                "[v3]\nbasicConstraints = critical,CA:FALSE\n"
                "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n"
                "subjectAltName = " + ",".join(_san(n) for n in names) + "\n")
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", key], check=True)
    os.chmod(key, 0o600)
    run(["openssl", "req", "-x509", "-new", "-config", ext, "-extensions", "v3", "-key", key,
         "-days", str(days), "-sha256", "-set_serial", "1", "-out", cert], check=True)
    return Leaf("self-signed", names, cert, key, 1, names[0])


def cert_info(pem_text):
    """(serial int, subject CN or None) of the first certificate in PEM text,
    read back with `openssl x509`."""
    res = run(["openssl", "x509", "-noout", "-serial", "-subject", "-nameopt", "RFC2253"],
              input=pem_text.encode(), check=True)
    serial = cn = None
    for line in res.stdout.splitlines():
        if line.startswith("serial="):
            serial = int(line.split("=", 1)[1].strip(), 16)
        elif line.startswith("subject="):
            for part in line.split("=", 1)[1].strip().split(","):
                if part.startswith("CN="):
                    cn = part[3:]
    if serial is None:
        raise AssertionError(f"no serial in openssl x509 output:\n{res.stdout}{res.stderr}")
    return serial, cn
