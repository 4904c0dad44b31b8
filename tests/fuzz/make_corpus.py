#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ from the tests' own inputs.

The string literals of the unit tests (HTTP messages, PROXY headers, YAML,
ACME bodies, admin requests), the YAML examples of docs/configuration.md,
and certificates and keys made by the integration tests' PKI
(tests/integration/pki.py, the openssl CLI). Each seed is named by the
SHA-1 of its bytes, as libFuzzer names what it adds. Run by hand after the
tests change; the corpora are committed. Usage: make_corpus.py [ROOT]
"""
import hashlib
import os
import pathlib
import re
import shutil
import struct
import sys
import tempfile
import time

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[2])
UNIT = ROOT / "tests" / "unit"
LITERAL = re.compile(r'R"\((.*?)\)"|"((?:[^"\\\n]|\\.)*)"((?:\s*"(?:[^"\\\n]|\\.)*")*)', re.S)
ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}


def decode(body):
    out, i = bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
        elif body[i + 1] == "x":
            m = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2:])
            out.append(int(m.group(0), 16))
            i += 2 + len(m.group(0))
        else:
            out += ESCAPES.get(body[i + 1], body[i + 1].encode())
            i += 2
    return bytes(out)


def literals(*files):
    """Every string literal of the files, adjacent ones joined, as bytes."""
    for path in files:
        for m in LITERAL.finditer(path.read_text()):
            if m.group(1) is not None:
                yield m.group(1).encode()
            else:
                parts = [m.group(2)] + re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(3) or "")
                yield b"".join(decode(p) for p in parts)


def write(target, seeds, limit=40):
    out = ROOT / "tests" / "fuzz" / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(s for s in seeds if s))[:limit]
    for seed in unique:
        (out / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    print(f"{target}: {len(unique)} seeds")


def proxy_header():
    lits = [s for s in literals(UNIT / "net" / "proxy_header_test.cc") if s.startswith(b"PROXY")]
    sig = b"\r\n\r\n\0\r\nQUIT\n"
    v4 = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack(">HH", 40000, 443)
    v6 = bytes.fromhex("20010db8" + "0" * 23 + "7" + "20010db8" + "0" * 23 + "1") + struct.pack(
        ">HH", 1, 65535)
    tlv = lambda t, v: bytes([t]) + struct.pack(">H", len(v)) + v  # noqa: E731
    ssl = tlv(0x20, b"\x07\0\0\0\0" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"leaf.example"))
    v2 = lambda cmd, fam, body: sig + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body  # noqa
    binary = [v2(0x21, 0x11, v4), v2(0x21, 0x21, v6), v2(0x20, 0x00, b""),
              v2(0x21, 0x11, v4 + tlv(0x02, b"a.example") + tlv(0x01, b"h2") + ssl),
              v2(0x21, 0x11, v4 + tlv(0x03, b"\0\0\0\0")), v2(0x21, 0x31, b"\0" * 216),
              v2(0x21, 0x11, v4) + b"\x16\x03\x01"]
    write("proxy_header", lits + binary)


def http(pattern, files):
    # The first byte of an input is the target's flags (piece size, HEAD, close).
    seeds = [s for s in literals(*files) if re.match(pattern, s)]
    return [bytes([i % 64]) + s for i, s in enumerate(seeds)]


def config():
    seeds = [s for s in literals(*(UNIT / "conf").glob("*.cc")) if b":" in s and b"\n" in s]
    docs = (ROOT / "docs" / "configuration.md").read_text()
    seeds += [b.encode() for b in re.findall(r"```yaml\n(.*?)```", docs, re.S)]
    seeds += [s for s in literals(ROOT / "conf" / "config.cc") if b"sites:" in s]
    write("config", sorted(seeds, key=len, reverse=True), limit=60)


def acme(pki):
    files = [UNIT / "acme" / n for n in ("problem_test.cc", "ari_test.cc", "schedule_test.cc",
                                         "jose_test.cc", "chain_test.cc", "ops_test.cc")]
    lits = list(literals(*files))
    seeds = [b"\0" + s for s in lits if b'"type"' in s]
    seeds += [b"\1" + s for s in lits if b"suggestedWindow" in s]
    seeds += [b"\2" + s for s in lits if re.fullmatch(rb" *(\d+|\w{3}, \d\d \w{3} \d{4} [\d:]+ GMT) *", s)]
    seeds += [b"\3" + s for s in lits if re.fullmatch(rb"[A-Za-z0-9_=+-]{2,}", s)][:8]
    seeds += [b"\4" + s for s in lits if s.startswith(b"<")]
    seeds += [b"\5" + pki["leaf_chain"], b"\6" + pki["ec_key"], b"\7" + b"keyCompromise", b"\7" + b"1"]
    write("acme", seeds)


def admin(pki):
    calls = re.findall(r'call\("(\w+)", "([^"]*)"(?:,\s*(R"\(.*?\)"|"(?:[^"\\]|\\.)*"))?',
                       (UNIT / "admin" / "admin_api_test.cc").read_text(), re.S)
    seeds = []
    for method, target, body in calls:
        data = next(literals_of(body)) if body else b""
        seeds.append(request(method, target, data))
    import json
    upload = json.dumps({"chain": pki["leaf_chain"].decode(), "key": pki["ec_key"].decode()})
    seeds.append(request("PUT", "/v1/certificates/site-a", upload.encode()))
    seeds.append(request("GET", "/v1/certificates", b"", "Accept: text/plain\r\n"))
    seeds.append(request("PUT", "/v1/certificates/x", b'{"chain": "a", "key": "b"}',
                         "Expect: 100-continue\r\n") + request("GET", "/v1/which?host=a.example", b""))
    write("admin", seeds)


def literals_of(text):
    with tempfile.NamedTemporaryFile("w", suffix=".cc") as f:
        f.write(text)
        f.flush()
        yield from literals(pathlib.Path(f.name))


def request(method, target, body, extra=""):
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n{extra}"
    if body or method in ("PUT", "POST"):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def make_pki():
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from pki import Certs, self_signed  # noqa: E402  (the integration tests' PKI)
    d = tempfile.mkdtemp(prefix="tlsedge-corpus-")
    certs = Certs(d)
    read = lambda p: pathlib.Path(p).read_bytes()  # noqa: E731
    ec = certs.leaf("leaf", ["leaf.example", "*.leaf.example"])
    rsa = certs.leaf("rsa", ["rsa.example"], key_type="rsa")
    ip = certs.leaf("ip", ["127.0.0.1", "::1"])
    own = self_signed(os.path.join(d, "own"), ["own.example"])
    ca = read(certs.ca_cert)
    pki = {"leaf_chain": read(ec.cert) + ca, "ec_key": read(ec.key)}
    # fuzz_credentials: 4 bytes now (little-endian), a flags byte, chain, NUL, key.
    now = struct.pack("<I", int(time.time()))
    pairs = [(read(ec.cert), read(ec.key)), (read(ec.cert) + ca, read(ec.key)),
             (ca + read(ec.cert), read(ec.key)), (read(rsa.cert) + ca, read(rsa.key)),
             (read(ip.cert), read(ip.key)), (read(own.cert), read(own.key)),
             (read(ec.cert), read(rsa.key)), (b"garbage", b"-----BEGIN PRIVATE KEY-----\n")]
    creds = [now + bytes([i % 2]) + c + b"\0" + k for i, (c, k) in enumerate(pairs)]
    shutil.rmtree(d)
    return pki, creds


def main():
    proxy_header()
    write("http_request", http(rb"[A-Z]+ \S+ HTTP/1", [UNIT / "http" / "http_parser_test.cc",
                                      UNIT / "http" / "request_target_test.cc",
                                      UNIT / "admin" / "admin_server_test.cc"]))
    write("http_response", http(rb"HTTP/1", [UNIT / "http" / "http_parser_test.cc",
                                            UNIT / "http" / "http_client_test.cc",
                                            *(UNIT / "proxy" / "upstream").glob("*.cc")]))
    config()
    pki, creds = make_pki()
    write("credentials", creds)
    acme(pki)
    admin(pki)


if __name__ == "__main__":
    main()
