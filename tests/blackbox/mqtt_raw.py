"""MQTT 3.1.1 packets encoded by hand, and a raw socket client, for black-box tests.

Tests use these where a library client would hide what is on the wire: return codes,
flags such as DUP and session present, withheld acknowledgements, malformed packets.
Everything follows the OASIS MQTT 3.1.1 standard, section 2 (fixed header) and 3
(packets). Nothing here validates what it is asked to encode: tests need bad packets too.
"""
import socket
import struct
import time

# Control packet types (MQTT 3.1.1 table 2.1), the high nibble of the first byte.
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

# CONNACK return codes (table 3.1).
CONNACK_ACCEPTED = 0
CONNACK_BAD_PROTOCOL_LEVEL = 1
CONNACK_IDENTIFIER_REJECTED = 2
CONNACK_SERVER_UNAVAILABLE = 3
CONNACK_BAD_USERNAME_OR_PASSWORD = 4
CONNACK_NOT_AUTHORIZED = 5

SUBACK_FAILURE = 0x80


class Closed(Exception):
    """The peer closed (or reset) the connection."""


def remaining_length(n):
    """The variable-length encoding of n (section 2.2.3): 7 bits a byte, high bit = more."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    """A length-prefixed UTF-8 string (section 1.5.3); bytes are taken as they are."""
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(ptype, flags, body=b""):
    return bytes([(ptype << 4) | flags]) + remaining_length(len(body)) + body


def connect(client_id, clean=True, keepalive=60, will=None, username=None, password=None,
            protocol_name="MQTT", level=4, reserved_flag=False):
    """will = (topic, payload, qos, retain) or None."""
    flags = 0x02 if clean else 0
    payload = utf8(client_id)
    if will:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += utf8(topic) + utf8(message)
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
    if password is not None:
        flags |= 0x40
        payload += utf8(password)
    if reserved_flag:
        flags |= 0x01
    variable = utf8(protocol_name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    return packet(CONNECT, 0, variable + payload)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, packet_id=None):
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = utf8(topic)
    if qos:
        body += struct.pack("!H", packet_id)
    if isinstance(payload, str):
        payload = payload.encode()
    return packet(PUBLISH, flags, body + payload)


def ack_packet(ptype, packet_id):
    """PUBACK, PUBREC, PUBREL (flags 0010, section 3.6.1) or PUBCOMP."""
    return packet(ptype, 0x02 if ptype == PUBREL else 0, struct.pack("!H", packet_id))


def subscribe(packet_id, filters):
    """filters: [(topic filter, requested QoS)]."""
    body = struct.pack("!H", packet_id)
    for topic, qos in filters:
        body += utf8(topic) + bytes([qos])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe(packet_id, filters):
    body = struct.pack("!H", packet_id) + b"".join(utf8(t) for t in filters)
    return packet(UNSUBSCRIBE, 0x02, body)


def pingreq():
    return packet(PINGREQ, 0)


def disconnect():
    return packet(DISCONNECT, 0)


class Packet:
    """A decoded packet: type, the fixed header's flags and the body after it."""

    def __init__(self, ptype, flags, body):
        self.type, self.flags, self.body = ptype, flags, body

    def __repr__(self):
        return "Packet(type=%d, flags=%#x, body=%r)" % (self.type, self.flags, self.body[:64])

    # CONNACK
    @property
    def session_present(self):
        return bool(self.body[0] & 0x01)

    @property
    def return_code(self):
        return self.body[1]

    # PUBLISH
    @property
    def qos(self):
        return (self.flags >> 1) & 0x03

    @property
    def dup(self):
        return bool(self.flags & 0x08)

    @property
    def retain(self):
        return bool(self.flags & 0x01)

    @property
    def topic(self):
        (n,) = struct.unpack_from("!H", self.body, 0)
        return self.body[2:2 + n].decode()

    @property
    def packet_id(self):
        """The packet id of a PUBLISH with QoS > 0, or of any acknowledgement."""
        if self.type == PUBLISH:
            (n,) = struct.unpack_from("!H", self.body, 0)
            return struct.unpack_from("!H", self.body, 2 + n)[0] if self.qos else None
        return struct.unpack_from("!H", self.body, 0)[0]

    @property
    def payload(self):
        (n,) = struct.unpack_from("!H", self.body, 0)
        return self.body[2 + n + (2 if self.qos else 0):]

    # SUBACK
    @property
    def granted(self):
        return list(self.body[2:])


class RawClient:
    """One TCP connection speaking hand-made packets. Every read has a deadline."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.next_id = 1
        self.connack = None

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no packet before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as e:
            raise Closed(str(e))
        if not chunk:
            raise Closed("connection closed by peer")
        self.buf += chunk

    def read(self, timeout=5.0):
        """The next packet. Raises socket.timeout after `timeout` s, Closed on EOF."""
        deadline = time.monotonic() + timeout
        while True:
            multiplier, length, i = 1, 0, 1
            complete = False
            while i < len(self.buf) and i <= 4:
                byte = self.buf[i]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                i += 1
                if not byte & 0x80:
                    complete = True
                    break
            if complete and len(self.buf) >= i + length:
                first, body = self.buf[0], self.buf[i:i + length]
                self.buf = self.buf[i + length:]
                return Packet(first >> 4, first & 0x0F, body)
            self._fill(deadline)

    def expect(self, ptype, timeout=5.0):
        """The next packet, which must be of type `ptype` (else AssertionError)."""
        p = self.read(timeout)
        if p.type != ptype:
            raise AssertionError("expected packet type %d, got %r" % (ptype, p))
        return p

    def closed_within(self, timeout):
        """True if the peer closes the connection within `timeout` s. Packets that
        arrive meanwhile are discarded; False if it is still open at the deadline."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.read(deadline - time.monotonic())
        except Closed:
            return True
        except socket.timeout:
            return False

    # Conveniences built on the encoders above.

    def connect(self, client_id, timeout=5.0, **kw):
        """Sends CONNECT and returns the CONNACK packet."""
        self.send(connect(client_id, **kw))
        self.connack = self.expect(CONNACK, timeout)
        return self.connack

    def subscribe(self, filters, timeout=5.0):
        """Subscribes and returns the SUBACK's granted QoS list."""
        pid = self.take_id()
        self.send(subscribe(pid, filters))
        p = self.expect(SUBACK, timeout)
        if p.packet_id != pid:
            raise AssertionError("SUBACK for packet id %d, sent %d" % (p.packet_id, pid))
        return p.granted

    def publish(self, topic, payload, qos=0, retain=False, timeout=5.0):
        """Publishes and completes the QoS 1/2 handshake; returns the packet id."""
        pid = self.take_id() if qos else None
        self.send(publish(topic, payload, qos, retain, packet_id=pid))
        if qos == 1:
            self.expect(PUBACK, timeout)
        elif qos == 2:
            self.expect(PUBREC, timeout)
            self.send(ack_packet(PUBREL, pid))
            self.expect(PUBCOMP, timeout)
        return pid

    def next_publish(self, timeout=5.0, ack=True):
        """The next PUBLISH from the server. With ack, acknowledges it as a client should
        (PUBACK for QoS 1, PUBREC for QoS 2) and answers any PUBREL met on the way with
        PUBCOMP. Raises socket.timeout, Closed, or AssertionError on another packet."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.read(deadline - time.monotonic())
            if p.type == PUBREL and ack:
                self.send(ack_packet(PUBCOMP, p.packet_id))
                continue
            if p.type != PUBLISH:
                raise AssertionError("expected PUBLISH, got %r" % p)
            if ack and p.qos == 1:
                self.send(ack_packet(PUBACK, p.packet_id))
            elif ack and p.qos == 2:
                self.send(ack_packet(PUBREC, p.packet_id))
            return p

    def publishes_within(self, timeout, ack=True):
        """Every PUBLISH that arrives in the next `timeout` s (acknowledged if ack)."""
        deadline = time.monotonic() + timeout
        out = []
        try:
            while True:
                out.append(self.next_publish(deadline - time.monotonic(), ack))
        except socket.timeout:
            return out

    def ping(self, timeout=5.0):
        self.send(pingreq())
        self.expect(PINGRESP, timeout)

    def take_id(self):
        pid = self.next_id
        self.next_id = self.next_id % 65535 + 1
        return pid
