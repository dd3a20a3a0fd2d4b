"""What herald acknowledges it keeps, and the loop keeps moving under load.

- A device receipt is PUBACKed only once it is durable: kill -9 right after the
  last PUBACK loses none.
- A persistent session's SUBACK means the subscription is stored: kill -9 right
  after it, and the session still has it.
- A client that subscribes to the topic it publishes to runs a sequential QoS 1
  loop as fast as on Mosquitto (the PUBACK travels ahead of the client's own copy).
- A QoS 1 fan-in flood to one subscriber delivers every acknowledged message:
  publishers are slowed down (flow control) instead of messages being dropped.
"""
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

import mqtt_raw as raw
from broker_target import HeraldBroker, MosquittoBroker

WAIT_S = 10.0
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"


def uid(prefix):
    return prefix + "-" + secrets.token_hex(4)


def metric(server, name, labels=""):
    status, text, _ = server.request("GET", "/metrics")
    m = re.search(r"^%s%s\s+(\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else 0.0


def self_loop_seconds(host, port, n):
    """Seconds for `n` sequential QoS 1 publishes by a client subscribed to the topic."""
    topic = uid("self")
    got = threading.Semaphore(0)
    c = mqtt.Client(client_id=uid("loop"), protocol=mqtt.MQTTv311)
    c.on_message = lambda *_: got.release()
    connected = threading.Event()
    c.on_connect = lambda *_: connected.set()
    c.connect(host, port, 30)
    c.loop_start()
    try:
        assert connected.wait(WAIT_S), "no CONNACK"
        result, mid = c.subscribe(topic, qos=1)
        time.sleep(0.2)
        start = time.perf_counter()
        for i in range(n):
            info = c.publish(topic, b"x%d" % i, qos=1)
            info.wait_for_publish(WAIT_S)
            assert info.is_published(), "publish %d not acknowledged" % i
        elapsed = time.perf_counter() - start
        for _ in range(n):
            assert got.acquire(timeout=WAIT_S), "own copies missing"
        return elapsed
    finally:
        c.loop_stop()
        c.disconnect()


class SelfSubscribedLoopTest(unittest.TestCase):
    def test_self_subscribed_qos1_loop_runs_at_mosquittos_speed(self):
        n = 100
        mosq = MosquittoBroker()
        try:
            theirs = min(self_loop_seconds(mosq.host, mosq.port, n) for _ in range(2))
        finally:
            mosq.stop()
        herald = HeraldBroker(open_mode=True)
        try:
            ours = min(self_loop_seconds(herald.host, herald.port, n) for _ in range(2))
        finally:
            herald.stop()
        # 100 messages took 4.35 s (43 ms each) when the PUBACK followed the copy;
        # Mosquitto takes about 12 ms. Allow noise, not a 40 ms stall per message.
        self.assertLess(ours, max(10 * theirs, 0.5),
                        "herald %.3f s vs mosquitto %.3f s for %d messages" % (ours, theirs, n))


def device(broker, user, dev_id):
    """Registers `user` and its device `dev_id`; returns a connected RawClient."""
    s, k = broker.server, broker.server.admin_key
    assert s.request("POST", "/v1/users", {"users": [{"id": user}]}, key=k)[0] == 200
    status, dev, _ = s.request("POST", "/v1/devices", {"user_id": user, "device_id": dev_id}, key=k)
    assert status in (200, 201), dev
    return dev["token"]


def features(broker, user, until):
    """The user's features once until(features) holds (or the last seen, after WAIT_S)."""
    s, k = broker.server, broker.server.admin_key
    deadline, body = time.time() + WAIT_S, None
    while time.time() < deadline:
        status, body, _ = s.request("GET", "/v1/users/%s/features" % user, key=k)
        if status == 200 and until(body):
            return body
        time.sleep(0.05)
    return body


class DurableAcknowledgementTest(unittest.TestCase):
    def test_receipts_survive_kill9_right_after_their_puback(self):
        broker = HeraldBroker(open_mode=False)
        try:
            s, k = broker.server, broker.server.admin_key
            self.assertEqual(s.request("POST", "/v1/users", {"users": [{"id": "rk"}]}, key=k)[0], 200)
            status, dev, _ = s.request("POST", "/v1/devices", {"user_id": "rk", "device_id": "rk-d"},
                                       key=k)
            self.assertIn(status, (200, 201))
            c = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertEqual(c.connect("rk-d", username="rk-d", password=dev["token"]).return_code, 0)
            n = 50
            for i in range(n):
                c.publish("r/rk", b'{"message_id":"m%d","type":"opened"}' % i, qos=1)  # waits for PUBACK
            broker.restart(kill9=True)  # at once: nothing acknowledged may be missing
            s = broker.server
            deadline, opened = time.time() + WAIT_S, None
            while time.time() < deadline:
                status, body, _ = s.request("GET", "/v1/users/rk/features", key=k)
                if status == 200:
                    opened = body["events_total"]["opened"]
                    if opened >= n:
                        break
                time.sleep(0.05)
            self.assertEqual(opened, n)
            c.close()
        finally:
            broker.stop()

    def test_a_qos2_receipt_resent_after_kill9_counts_once(self):
        broker = HeraldBroker(open_mode=False)
        try:
            token = device(broker, "r2", "r2-d")
            c = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertEqual(c.connect("r2-d", clean=False, username="r2-d", password=token).return_code, 0)
            body = b'{"message_id":"m-q2","type":"clicked"}'
            c.send(raw.publish("r/r2", body, qos=2, packet_id=5))
            self.assertEqual(c.expect(raw.PUBREC).packet_id, 5)
            broker.restart(kill9=True)  # before PUBREL: the device must send it again
            c = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            ack = c.connect("r2-d", clean=False, username="r2-d", password=token)
            self.assertTrue(ack.session_present)
            c.send(raw.publish("r/r2", body, qos=2, packet_id=5, dup=True))
            self.assertEqual(c.expect(raw.PUBREC).packet_id, 5)
            c.send(raw.ack_packet(raw.PUBREL, 5))
            self.assertEqual(c.expect(raw.PUBCOMP).packet_id, 5)
            got = features(broker, "r2", lambda f: f["events_total"]["clicked"] >= 1)
            time.sleep(0.3)  # a second copy, if any, would land by now
            got = features(broker, "r2", lambda f: True)
            self.assertEqual(got["events_total"]["clicked"], 1)
            c.close()
        finally:
            broker.stop()

    def test_a_receipt_that_cannot_be_stored_is_acknowledged_and_counted(self):
        broker = HeraldBroker(open_mode=False)
        try:
            token = device(broker, "rb", "rb-d")
            c = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertEqual(c.connect("rb-d", username="rb-d", password=token).return_code, 0)
            bad = b'{"message_id":"%s","type":"opened"}' % (b"x" * 5000)  # far too long an id
            c.publish("r/rb", bad, qos=1)  # PUBACK, not a close the device would retry forever
            c.ping()
            self.assertGreaterEqual(metric(broker.server, "herald_mqtt_receipts_rejected_total"), 1)
            c.close()
        finally:
            broker.stop()

    def test_a_retained_messages_puback_means_it_survives_kill9(self):
        broker = HeraldBroker(open_mode=True)
        try:
            topic = uid("ret-k9")
            pub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            pub.connect(uid("ret-pub"))
            pub.publish(topic, b"kept", qos=1, retain=True)  # waits for PUBACK
            broker.restart(kill9=True)
            sub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            sub.connect(uid("ret-sub"))
            sub.subscribe([(topic, 1)])
            got = sub.next_publish()
            self.assertEqual((got.payload, got.retain), (b"kept", True))
            for c in (pub, sub):
                c.close()
        finally:
            broker.stop()

    def test_a_suback_means_the_subscription_survives_kill9(self):
        broker = HeraldBroker(open_mode=True)
        try:
            cid, topic = uid("sub-k9"), uid("sub-k9-t")
            c = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            c.connect(cid, clean=False)
            self.assertEqual(c.subscribe([(topic, 1)]), [1])
            broker.restart(kill9=True)
            back = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertTrue(back.connect(cid, clean=False).session_present)
            pub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            pub.connect(uid("pub"))
            pub.publish(topic, b"after the crash", qos=1)
            got = back.next_publish()
            self.assertEqual(got.payload, b"after the crash")
            for x in (c, back, pub):
                x.close()
        finally:
            broker.stop()


class InflightAcrossKill9Test(unittest.TestCase):
    """What was in flight when the broker died is exactly where it was."""

    def test_qos2_is_delivered_exactly_once_across_kill9(self):
        broker = HeraldBroker(open_mode=True)
        try:
            topic, sid, pid = uid("q2"), uid("q2-sub"), uid("q2-pub")
            sub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            sub.connect(sid, clean=False)
            self.assertEqual(sub.subscribe([(topic, 2)]), [2])
            pub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            pub.connect(pid, clean=False)
            pub.send(raw.publish(topic, b"once", qos=2, packet_id=7))
            self.assertEqual(pub.expect(raw.PUBREC).packet_id, 7)  # no PUBREL yet
            first = sub.next_publish()  # the subscriber takes it (PUBREC, PUBREL, PUBCOMP)
            self.assertEqual(first.payload, b"once")
            sub.expect(raw.PUBREL)
            sub.send(raw.ack_packet(raw.PUBCOMP, first.packet_id))
            broker.restart(kill9=True)  # at once
            # The publisher did not see PUBCOMP, so it sends the PUBLISH again, as
            # MQTT-4.3.3 requires; herald remembers the id and does not route it twice.
            pub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertTrue(pub.connect(pid, clean=False).session_present)
            pub.send(raw.publish(topic, b"once", qos=2, packet_id=7, dup=True))
            self.assertEqual(pub.expect(raw.PUBREC).packet_id, 7)
            pub.send(raw.ack_packet(raw.PUBREL, 7))
            self.assertEqual(pub.expect(raw.PUBCOMP).packet_id, 7)
            sub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertTrue(sub.connect(sid, clean=False).session_present)
            self.assertEqual(sub.publishes_within(1.0), [])
            for c in (pub, sub):
                c.close()
        finally:
            broker.stop()

    def test_a_qos2_message_received_just_before_kill9_comes_back_with_its_id_and_dup(self):
        broker = HeraldBroker(open_mode=True)
        try:
            topic, sid = uid("q2out"), uid("q2out-sub")
            sub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            sub.connect(sid, clean=False)
            sub.subscribe([(topic, 2)])
            pub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            pub.connect(uid("q2out-pub"))
            pub.send(raw.publish(topic, b"exactly once", qos=2, packet_id=3))
            first = sub.next_publish(ack=False)
            broker.restart(kill9=True)  # the moment it arrived: no time for a late mark
            back = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertTrue(back.connect(sid, clean=False).session_present)
            again = back.next_publish()
            # The same id with DUP: the client knows it has this message already.
            self.assertEqual((again.payload, again.dup, again.packet_id),
                             (b"exactly once", True, first.packet_id))
            for c in (sub, pub, back):
                c.close()
        finally:
            broker.stop()

    def test_unacknowledged_qos1_comes_back_with_dup_and_its_id_after_kill9(self):
        broker = HeraldBroker(open_mode=True)
        try:
            topic, sid = uid("dupk9"), uid("dupk9-sub")
            sub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            sub.connect(sid, clean=False)
            sub.subscribe([(topic, 1)])
            pub = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            pub.connect(uid("dupk9-pub"))
            pub.publish(topic, b"ack me later", qos=1)
            first = sub.next_publish(ack=False)
            self.assertFalse(first.dup)
            time.sleep(0.2)  # the in-flight mark is written behind the send
            broker.restart(kill9=True)
            back = raw.RawClient(broker.host, broker.port, timeout=WAIT_S)
            self.assertTrue(back.connect(sid, clean=False).session_present)
            again = back.next_publish()
            self.assertEqual((again.payload, again.dup, again.packet_id),
                             (b"ack me later", True, first.packet_id))
            for c in (sub, pub, back):
                c.close()
        finally:
            broker.stop()


class DescriptorBudgetTest(unittest.TestCase):
    def test_an_http_connection_flood_leaves_mqtt_connects_working(self):
        """herald runs with 1,500 descriptors and keeps 400 for devices; 1,400 idle
        HTTP connections take what they may, the rest are refused, devices connect."""
        import socket
        from harness import Server
        conf_dir = tempfile.mkdtemp(prefix="herald-fds-")
        conf = os.path.join(conf_dir, "fds.toml")
        with open(conf, "w") as f:
            f.write("[server]\ndescriptor_reserve = 400\n[http]\nmax_connections = 100000\n")
            if os.environ.get("MQTT_EVENT_LOOPS"):
                f.write("[mqtt]\nevent_loops = %d\n" % int(os.environ["MQTT_EVENT_LOOPS"]))
        s = Server("--mqtt-open", config=conf, max_open_files=1500)
        idle = []
        try:
            host, port = s.http.rsplit(":", 1)
            for _ in range(1400):
                c = socket.create_connection((host, int(port)), timeout=5)
                idle.append(c)
            time.sleep(0.5)
            # The last ones were answered and closed: the answer names the reason.
            idle[-1].settimeout(5)
            answer = idle[-1].recv(4096)
            self.assertIn(b"503", answer.split(b"\r\n")[0])
            self.assertIn(b"too_many_connections", answer)
            mhost, mport = s.mqtt.rsplit(":", 1)
            for i in range(20):  # devices still get in
                d = raw.RawClient(mhost, int(mport), timeout=WAIT_S)
                self.assertEqual(d.connect(uid("dev%d" % i)).return_code, 0)
                idle.append(d.sock)
            for c in idle[:1400]:
                c.close()
            idle = idle[1400:]
            time.sleep(0.5)
            self.assertGreater(metric(s, "herald_http_connections_refused_total"), 0)
        finally:
            for c in idle:
                c.close()
            s.stop()
            s.cleanup()
            shutil.rmtree(conf_dir, ignore_errors=True)


class FanInFloodTest(unittest.TestCase):
    def test_qos1_fan_in_flood_delivers_every_acknowledged_message(self):
        """Four mosquitto_pub processes flood one mosquitto_sub at QoS 1.

        The session's queue limit is set low (2,000) so that, without flow control,
        herald would drop most of the flood as queue_full after acknowledging it."""
        conf_dir = tempfile.mkdtemp(prefix="herald-flood-")
        conf = os.path.join(conf_dir, "flood.toml")
        with open(conf, "w") as f:
            f.write("[mqtt]\nmax_queued_messages = 2000\nflow_high_water = 500\n")
            if os.environ.get("MQTT_EVENT_LOOPS"):  # publishers and subscriber on different loops
                f.write("event_loops = %d\n" % int(os.environ["MQTT_EVENT_LOOPS"]))
        broker = HeraldBroker(open_mode=True, extra=["--config", conf])
        try:
            topic, per, pubs = uid("flood"), 20000, 4
            total = per * pubs
            # Files, not pipes, on both ends: a test that stops reading a pipe would
            # itself be the slow consumer.
            received_path = os.path.join(conf_dir, "received")
            lines_path = os.path.join(conf_dir, "lines")
            with open(lines_path, "w") as f:
                f.write("".join("p%d\n" % i for i in range(per)))
            with open(received_path, "wb") as out:
                sub = subprocess.Popen([MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.port),
                                        "-q", "1", "-t", topic, "-C", str(total), "-W", "120"],
                                       stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            time.sleep(0.5)  # subscribed
            procs = []
            for _ in range(pubs):
                with open(lines_path, "rb") as lines:
                    procs.append(subprocess.Popen(
                        [MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port), "-q", "1",
                         "-t", topic, "-l"], stdin=lines, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE))
            for p in procs:
                self.assertEqual(p.wait(timeout=120), 0, p.stderr.read())
            _, err = sub.communicate(timeout=120)
            with open(received_path, "rb") as f:
                received = f.read().count(b"\n")
            s = broker.server
            dropped = metric(s, "herald_mqtt_dropped_total", '{reason="queue_full"}')
            self.assertEqual((received, dropped), (total, 0.0), err.decode())
            self.assertGreater(metric(s, "herald_mqtt_flow_pauses_total"), 0)
        finally:
            broker.stop()
            shutil.rmtree(conf_dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
