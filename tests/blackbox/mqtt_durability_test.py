"""Zero loss: QoS 1 messages queued for offline persistent sessions survive kill -9.

10 devices hold persistent sessions (clean session = 0) subscribed to their own topic
u/<i>, then go offline. A publisher sends 10,000 QoS 1 messages and waits for every
PUBACK (herald acknowledges only once the copies are durable). The broker is killed
with SIGKILL, restarted on the same data directory, and the devices reconnect: every
one of the 10,000 messages must arrive, once.
"""
import signal
import threading
import time
import unittest

import paho.mqtt.client as mqtt

from harness import Server

DEVICES = 10
MESSAGES = 10000


def host_port(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def connect(addr, client_id, clean):
    c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    connected = threading.Event()
    c.on_connect = lambda cl, ud, flags, rc: connected.set() if rc == 0 else None
    c.connect(*host_port(addr), keepalive=30)
    c.loop_start()
    if not connected.wait(10):
        raise RuntimeError("connect timed out for " + client_id)
    return c


class DurabilityTest(unittest.TestCase):
    def test_queued_qos1_messages_survive_kill9(self):
        s = Server("--mqtt-open")
        try:
            # Persistent sessions, then offline.
            for i in range(DEVICES):
                c = connect(s.mqtt, "dev-%d" % i, clean=False)
                r, mid = c.subscribe("u/%d" % i, qos=1)
                self.assertEqual(r, 0)
                time.sleep(0.05)
                c.disconnect()
                c.loop_stop()

            pub = connect(s.mqtt, "publisher", clean=True)
            acked = set()
            lock = threading.Lock()
            all_acked = threading.Event()

            def on_publish(client, userdata, mid):
                with lock:
                    acked.add(mid)
                    if len(acked) == MESSAGES:
                        all_acked.set()

            pub.on_publish = on_publish
            for n in range(MESSAGES):
                info = pub.publish("u/%d" % (n % DEVICES), "msg-%d" % n, qos=1)
                self.assertEqual(info.rc, 0)
            self.assertTrue(all_acked.wait(120), "only %d PUBACKs" % len(acked))
            pub.disconnect()
            pub.loop_stop()

            # kill -9 with everything acknowledged, then restart on the same data.
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait(10)
            again = Server("--mqtt-open", data_dir=s.data_dir)
            try:
                received = set()
                done = threading.Event()
                lock2 = threading.Lock()

                def on_message(client, userdata, msg):
                    with lock2:
                        received.add(msg.payload.decode())
                        if len(received) == MESSAGES:
                            done.set()

                clients = []
                for i in range(DEVICES):
                    c = mqtt.Client(client_id="dev-%d" % i, clean_session=False,
                                    protocol=mqtt.MQTTv311)
                    c.on_message = on_message
                    c.connect(*host_port(again.mqtt), keepalive=30)
                    c.loop_start()
                    clients.append(c)
                done.wait(120)
                for c in clients:
                    c.disconnect()
                    c.loop_stop()
                missing = MESSAGES - len(received)
                self.assertEqual(missing, 0, "%d of %d messages lost" % (missing, MESSAGES))
                self.assertEqual(again.stop(), 0)
            finally:
                again.cleanup()
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
