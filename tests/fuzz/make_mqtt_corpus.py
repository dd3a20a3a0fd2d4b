#!/usr/bin/python3
"""Writes the seed corpus for src/mqtt/fuzz/codec_fuzz.cc.

One file per seed in tests/fuzz/mqtt_codec_corpus/: a valid packet of every MQTT
3.1.1 type, a stream of several packets, and a few malformed packets that stop just
past a validation rule. Built from the standard's byte layouts, independently of the
C++ encoder. Rerun after editing; the output is deterministic.

    /usr/bin/python3 tests/fuzz/make_mqtt_corpus.py
"""

import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mqtt_codec_corpus")


def varint(n):
    out = bytearray()
    while True:
        digit, n = n & 0x7F, n >> 7
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def s(text):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def u16(n):
    return struct.pack(">H", n)


def frame(byte0, body):
    return bytes([byte0]) + varint(len(body)) + body


def connect(flags, payload, name=b"MQTT", level=4, keep_alive=60):
    return frame(0x10, s(name) + bytes([level, flags]) + u16(keep_alive) + payload)


VALID = {
    "connect_minimal": connect(0x02, s("client-1")),
    "connect_full": connect(0xEE, s("dev") + s("u/1/status") + s(b"\x00off") + s("user") + s(b"\xffpw")),
    "connect_empty_id": connect(0x02, s("")),
    "connack_session_present": frame(0x20, b"\x01\x00"),
    "publish_qos0": frame(0x30, s("a/b") + b"hello"),
    "publish_qos1_dup": frame(0x3A, s("u/42") + u16(7) + b'{"msg":1}'),
    "publish_qos2_retain": frame(0x35, s("$SYS/caf\u00e9") + u16(65535)),
    "publish_long": frame(0x30, s("t") + b"p" * 200),  # two-byte remaining length
    "puback": frame(0x40, u16(1)),
    "pubrec": frame(0x50, u16(2)),
    "pubrel": frame(0x62, u16(3)),
    "pubcomp": frame(0x70, u16(4)),
    "subscribe": frame(0x82, u16(10) + s("a/b") + b"\x01" + s("c/+/#") + b"\x02"),
    "suback": frame(0x90, u16(10) + b"\x00\x01\x02\x80"),
    "unsubscribe": frame(0xA2, u16(11) + s("a/b") + s("+")),
    "unsuback": frame(0xB0, u16(11)),
    "pingreq": frame(0xC0, b""),
    "pingresp": frame(0xD0, b""),
    "disconnect": frame(0xE0, b""),
}

MALFORMED = {
    "bad_publish_qos3": frame(0x36, s("a") + u16(1)),
    "bad_publish_wildcard": frame(0x30, s("a/+")),
    "bad_connect_name": connect(0x02, s("c"), name=b"MQIsdp", level=3),
    "bad_connect_password_only": connect(0x42, s("c") + s("pw")),
    "bad_subscribe_filter": frame(0x82, u16(1) + s("a/#/b") + b"\x00"),
    "bad_remaining_length": b"\x30\xff\xff\xff\xff\x01",
    "bad_utf8_topic": frame(0x30, s(b"\xed\xa0\x80")),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = dict(VALID)
    seeds.update(MALFORMED)
    seeds["stream_of_packets"] = VALID["connect_minimal"] + VALID["subscribe"] + \
        VALID["publish_qos1_dup"] + VALID["pingreq"] + VALID["disconnect"]
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
