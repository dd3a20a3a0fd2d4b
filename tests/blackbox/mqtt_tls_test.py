"""MQTT over TLS: herald serves the configured certificate and carries MQTT over it."""
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

import paho.mqtt.client as mqtt

from harness import Server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TlsTest(unittest.TestCase):
    def test_publish_and_receive_over_tls(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                           check=True, capture_output=True, timeout=60)
            port = free_port()
            cfg = os.path.join(d, "tls.toml")
            with open(cfg, "w") as f:
                f.write('[mqtt]\ntls_listen = "127.0.0.1:%d"\ntls_cert = "%s"\ntls_key = "%s"\n'
                        % (port, cert, key))
            s = Server("--mqtt-open", config=cfg)
            try:
                got = threading.Event()
                payloads = []

                def client(cid):
                    c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv311)
                    c.tls_set(ca_certs=cert, cert_reqs=ssl.CERT_REQUIRED)
                    c.tls_insecure_set(True)  # the certificate names localhost, we dial 127.0.0.1
                    return c

                sub = client("tls-sub")
                subscribed = threading.Event()
                sub.on_subscribe = lambda *a: subscribed.set()
                sub.on_connect = lambda cl, ud, fl, rc: cl.subscribe("tls/t", qos=1)

                def on_message(cl, ud, msg):
                    payloads.append(msg.payload)
                    got.set()

                sub.on_message = on_message
                sub.connect("127.0.0.1", port, keepalive=30)
                sub.loop_start()
                self.assertTrue(subscribed.wait(10))
                pub = client("tls-pub")
                pub.connect("127.0.0.1", port, keepalive=30)
                pub.loop_start()
                pub.publish("tls/t", b"over tls", qos=1).wait_for_publish(10)
                self.assertTrue(got.wait(10))
                self.assertEqual(payloads, [b"over tls"])
                for c in (sub, pub):
                    c.disconnect()
                    c.loop_stop()

                # A plain-text client on the TLS port is not served MQTT.
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    raw.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x1e\x00\x00")
                    raw.settimeout(5)
                    try:
                        data = raw.recv(16)
                    except (ConnectionResetError, socket.timeout):
                        data = b""
                    self.assertNotEqual(data[:2], b"\x20\x02")
                self.assertEqual(s.stop(), 0)
            finally:
                s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
