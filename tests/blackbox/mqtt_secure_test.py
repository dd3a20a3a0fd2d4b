"""herald's MQTT broker in secure mode (the default, without --mqtt-open).

The contract (API.md, MQTT): a device registered with POST /v1/devices connects with
username = device id and password = its token; it may subscribe to u/<user> and below,
and publish only to r/<user>. MQTT 3.1.1 cannot refuse a PUBLISH, so the broker closes
the connection instead (MQTT-3.3.5-2); a refused filter gets SUBACK 0x80. Mosquitto has
no such mode, so this file runs against herald only.
"""
import faulthandler
import re
import secrets
import socket
import sys
import time
import unittest

import mqtt_raw as raw
from broker_target import TARGET, HeraldBroker

WAIT_S = 5.0
REFUSED = (raw.CONNACK_BAD_USERNAME_OR_PASSWORD, raw.CONNACK_NOT_AUTHORIZED)
ACL_METRIC_RE = re.compile(r"^herald_mqtt_acl_denied_total(\{[^}]*\})?\s+(\S+)$", re.M)


@unittest.skipIf(TARGET == "mosquitto", "device tokens and the per-user ACL are herald's own; "
                 "Mosquitto has no equivalent of secure mode")
class SecureModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = HeraldBroker(open_mode=False)
        cls.server = cls.broker.server
        # Devices belong to users; make sure u1 and u2 exist where herald wants them to.
        cls.server.request("POST", "/v1/users", {"users": [{"id": "u1"}, {"id": "u2"}]},
                           key=cls.server.admin_key)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def register(self, user_id, device_id):
        """Registers a device with the admin key and returns its token."""
        status, body, _ = self.server.request(
            "POST", "/v1/devices", {"user_id": user_id, "device_id": device_id},
            key=self.server.admin_key)
        self.assertIn(status, (200, 201), body)
        self.assertEqual(body["device_id"], device_id)
        self.assertIsInstance(body["token"], str)
        self.assertTrue(body["token"])
        return body["token"]

    def device(self, user_id="u1"):
        """A fresh device of `user_id`: (device id, token). Ids are unique per test
        because registering a device again revokes its older tokens."""
        device_id = "d-" + secrets.token_hex(4)
        return device_id, self.register(user_id, device_id)

    def open(self, username=None, password=None):
        """A raw connection that has sent CONNECT; returns (client, CONNACK)."""
        c = raw.RawClient(self.broker.host, self.broker.port, timeout=WAIT_S)
        self.addCleanup(c.close)
        ack = c.connect("c-" + secrets.token_hex(4), username=username, password=password)
        return c, ack

    def connected(self, device_id, token):
        c, ack = self.open(device_id, token)
        self.assertEqual(ack.return_code, raw.CONNACK_ACCEPTED)
        return c

    def assert_refused(self, username, password):
        c, ack = self.open(username, password)
        self.assertIn(ack.return_code, REFUSED)
        self.assertTrue(c.closed_within(WAIT_S))  # MQTT-3.2.2-5

    def acl_denied_total(self):
        """The sum over all series of herald_mqtt_acl_denied_total, None if absent."""
        status, text, _ = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        values = [float(v) for _, v in ACL_METRIC_RE.findall(text)]
        return sum(values) if values else None

    # Devices and tokens

    def test_register_device_returns_its_token(self):
        token = self.register("u1", "d1")
        c = self.connected("d1", token)
        c.ping()
        status, _, _ = self.server.request("POST", "/v1/devices",
                                           {"user_id": "u1", "device_id": "d9"})
        self.assertEqual(status, 401)  # registering needs a tenant key

    def test_device_token_connects_with_connack_0(self):
        device_id, token = self.device()
        c = self.connected(device_id, token)
        self.assertFalse(c.connack.session_present)
        c.ping()

    def test_wrong_password_is_refused(self):
        device_id, token = self.device()
        self.assert_refused(device_id, token + "x")
        self.assert_refused(device_id, "not-a-token")

    def test_token_of_another_device_is_refused(self):
        _, token_a = self.device("u1")
        device_b, _ = self.device("u2")
        self.assert_refused(device_b, token_a)
        self.assert_refused("d-unknown-" + secrets.token_hex(4), token_a)

    def test_missing_credentials_are_refused(self):
        device_id, _ = self.device()
        self.assert_refused(None, None)
        self.assert_refused(device_id, None)

    def test_revoked_device_token_is_refused(self):
        device_id, token = self.device()
        self.connected(device_id, token).close()
        status, body, _ = self.server.request("DELETE", "/v1/devices/" + device_id,
                                              key=self.server.admin_key)
        self.assertIn(status, (200, 204), body)
        self.assert_refused(device_id, token)

    # ACL

    def test_subscribe_acl_grants_own_user_topics_only(self):
        device_id, token = self.device("u1")
        c = self.connected(device_id, token)
        granted = c.subscribe([("u/u1", 1), ("u/u1/#", 1), ("u/u2", 1), ("#", 1), ("u/+", 1)])
        self.assertEqual(len(granted), 5)
        for flt, code in zip(("u/u1", "u/u1/#"), granted[:2]):
            self.assertIn(code, (0, 1), "%s refused" % flt)
        self.assertEqual(granted[2:], [raw.SUBACK_FAILURE] * 3)
        c.ping()  # a refused filter does not cost the connection

    def test_publish_to_own_receipt_topic_is_allowed(self):
        device_id, token = self.device("u1")
        c = self.connected(device_id, token)
        receipt = b'{"message_id":"m-none","type":"opened"}'
        c.publish("r/u1", receipt, qos=1)  # PUBACK
        c.publish("r/u1", receipt, qos=0)
        c.ping()
        self.assertFalse(c.closed_within(0.3))

    def test_presence_and_receipts_reach_the_users_features(self):
        """The gateway reports online, offline and receipts to the event log."""
        self.server.request("POST", "/v1/users", {"users": [{"id": "presence"}]},
                            key=self.server.admin_key)
        device_id, token = self.device("presence")
        c = self.connected(device_id, token)
        c.publish("r/presence", b'{"message_id":"pm1","type":"opened"}', qos=1)
        c.send(raw.disconnect())
        self.assertTrue(c.closed_within(WAIT_S))
        deadline = time.time() + WAIT_S
        totals = {}
        while time.time() < deadline:
            status, body, _ = self.server.request("GET", "/v1/users/presence/features",
                                                  key=self.server.admin_key)
            if status == 200:
                totals = body["events_total"]
                if totals["offline"] >= 1:
                    break
            time.sleep(0.05)
        self.assertEqual((totals.get("online"), totals.get("opened"), totals.get("offline")),
                         (1, 1, 1), totals)

    def test_publish_anywhere_else_closes_connection(self):
        for topic in ("r/u2", "u/u1", "u/u2", "r/u1/x", "other/topic"):
            for qos in (0, 1):
                with self.subTest(topic=topic, qos=qos):
                    device_id, token = self.device("u1")
                    c = self.connected(device_id, token)
                    c.send(raw.publish(topic, b"{}", qos=qos, packet_id=1 if qos else None))
                    # Any packet before the close would be a PUBACK: not allowed.
                    try:
                        p = c.read(WAIT_S)
                    except raw.Closed:
                        continue
                    except socket.timeout:
                        self.fail("still connected %.0f s after publishing to %s"
                                  % (WAIT_S, topic))
                    self.fail("got %r instead of a closed connection" % p)

    # Metrics

    def test_metrics_count_refused_subscribe_and_publish(self):
        before = self.acl_denied_total() or 0
        device_id, token = self.device("u1")
        c = self.connected(device_id, token)
        self.assertEqual(c.subscribe([("u/u2", 0)]), [raw.SUBACK_FAILURE])
        c.send(raw.publish("r/u2", b"{}", qos=1, packet_id=7))
        self.assertTrue(c.closed_within(WAIT_S))
        deadline = time.monotonic() + WAIT_S
        while True:
            after = self.acl_denied_total()
            if (after is not None and after >= before + 2) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIsNotNone(after, "herald_mqtt_acl_denied_total missing from /metrics")
        self.assertEqual(after - before, 2)


if __name__ == "__main__":
    faulthandler.dump_traceback_later(240, exit=True)
    unittest.main(argv=[sys.argv[0], *sys.argv[1:]])
