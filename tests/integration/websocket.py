"""A minimal RFC 6455 WebSocket codec (standard library only): the opening
handshake's Sec-WebSocket-Accept, frames with 7/16/64-bit lengths and
masking, and an echo server loop for a RawOrigin handler."""

import base64
import hashlib
import os
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 16 << 20  # bound on anything this codec accepts


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def _apply_mask(mask, payload):
    # XOR with the 4-byte key repeated: int arithmetic is fast for 1 MiB.
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload, *, mask, fin=True):
    """One frame. Clients must mask (mask=True), servers must not."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _apply_mask(key, payload)


def read_frame(reader):
    """(fin, opcode, payload, masked) from a SockReader; payload unmasked."""
    b0, b1 = reader.recv_exact(2)
    fin, opcode, masked, n = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
    if b0 & 0x70:
        raise AssertionError(f"reserved bits set in frame header {b0:#x}")
    if n == 126:
        (n,) = struct.unpack("!H", reader.recv_exact(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", reader.recv_exact(8))
    if n > MAX_MESSAGE:
        raise AssertionError(f"frame of {n} bytes is over the test bound")
    key = reader.recv_exact(4) if masked else None
    payload = reader.recv_exact(n)
    if masked:
        payload = _apply_mask(key, payload)
    return fin, opcode, payload, masked


def read_message(reader, *, expect_masked):
    """(opcode, payload) of the next data or close message, answering nothing
    itself; continuation frames are joined. Checks masking."""
    opcode, parts, total = None, [], 0
    for _ in range(10000):
        fin, op, payload, masked = read_frame(reader)
        if masked != expect_masked:
            raise AssertionError(f"frame masked={masked}, expected masked={expect_masked}")
        if op >= 0x8:  # control frames may sit between fragments
            if op == OP_CLOSE or opcode is None:
                return op, payload
            continue
        if opcode is None:
            opcode = op
        total += len(payload)
        if total > MAX_MESSAGE:
            raise AssertionError("message over the test bound")
        parts.append(payload)
        if fin:
            return opcode, b"".join(parts)
    raise AssertionError("too many frames in one message")


def serve_echo(conn, reader, request):
    """RawOrigin handler body: completes the handshake for `request` (a
    RawRequest) and echoes every message until the client's close."""
    key = request.header("Sec-WebSocket-Key")
    if key is None or (request.header("Upgrade") or "").lower() != "websocket":
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept_for(key)}\r\n"
                  "X-Origin-Ws: echo\r\n\r\n").encode())
    for _ in range(10000):
        opcode, payload = read_message(reader, expect_masked=True)
        if opcode == OP_CLOSE:
            conn.sendall(encode_frame(OP_CLOSE, payload[:2], mask=False))
            return
        if opcode == OP_PING:
            conn.sendall(encode_frame(OP_PONG, payload, mask=False))
            continue
        conn.sendall(encode_frame(opcode, payload, mask=False))
