"""Black-box tests of the single push (POST /v1/push) end to end: an account, users
with profiles, a follow and a device through the API; the device connects with paho
(persistent session) and receives the payload with its ids and the rendered title;
its opened receipt shows in GET /v1/messages/{id}; the policy suppresses a new
follower's 6th push of day 1; bad input; and a push acknowledged before kill -9
keeps its record."""
import json
import os
import queue
import secrets
import shutil
import signal
import tempfile
import time
import unittest

import paho.mqtt.client as mqtt

from harness import Server


class PushTest(unittest.TestCase):
    def setUp(self):
        self.conf_dir = tempfile.mkdtemp(prefix="herald-conf-")
        self.conf = os.path.join(self.conf_dir, "push.toml")
        with open(self.conf, "w") as f:
            f.write('[server]\nvirtual_clock_start = "2026-03-02T02:00:00Z"\n'
                    "[stream]\ncheckpoint_interval_ms = 50\n"
                    '[policy]\nquiet_start = "00:00"\nquiet_end = "00:00"\ndaily_cap = 100\n')
        self.data_dir = tempfile.mkdtemp(prefix="herald-bb-push-")
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        self.k = self.s.admin_key
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.loop_stop()
            c.disconnect()
        self.s.cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.conf_dir, ignore_errors=True)
        try:
            os.remove(self.data_dir + ".privacy.key")
        except OSError:
            pass

    def req(self, method, path, body=None):
        return self.s.request(method, path, body, key=self.k)[:2]

    def ok(self, method, path, body=None, status=200):
        got, answer = self.req(method, path, body)
        self.assertEqual(got, status, (path, answer))
        return answer

    def device(self, user):
        """A paho client of a new device of `user`, subscribed to u/<user>; the queue
        gets every payload."""
        device_id = "d-" + secrets.token_hex(4)
        token = self.ok("POST", "/v1/devices", {"user_id": user, "device_id": device_id}, 201)["token"]
        host, port = self.s.mqtt.rsplit(":", 1)
        got = queue.Queue()
        subscribed = queue.Queue()
        c = mqtt.Client(client_id=device_id, clean_session=False)
        c.username_pw_set(device_id, token)
        c.on_message = lambda cl, ud, msg: got.put(msg)
        c.on_subscribe = lambda cl, ud, mid, qos: subscribed.put(qos)
        c.on_connect = lambda cl, ud, flags, rc: cl.subscribe("u/" + user, qos=1)
        c.connect(host, int(port), keepalive=30)
        c.loop_start()
        self.clients.append(c)
        subscribed.get(timeout=10)
        return c, got

    def setup_user(self, user, account="news", account_type="business"):
        self.ok("POST", "/v1/accounts", {"id": account, "type": account_type, "name": "News"})
        self.ok("POST", "/v1/users", {"users": [{"id": user, "tz": "Asia/Shanghai",
                                                 "profile": {"name": "Li Lei", "city": "Shenzhen"}}]})
        self.ok("POST", "/v1/follows", {"follows": [{"user_id": user, "account_id": account,
                                                     "followed_at": "2026-03-02T01:00:00Z"}]})

    def push(self, user, account="news", **message):
        message.setdefault("title", "Hi {{user.name}}")
        message.setdefault("body", "News from {{user.profile.city}}")
        return self.req("POST", "/v1/push", {"user_id": user, "account_id": account, "message": message})

    def message(self, mid, want):
        deadline = time.time() + 10
        while True:
            status, m = self.req("GET", "/v1/messages/" + mid)
            if status == 200 and want(m) or time.time() > deadline:
                return status, m
            time.sleep(0.05)

    def test_a_push_reaches_the_device_and_its_receipt_the_record(self):
        self.setup_user("u1")
        client, got = self.device("u1")
        status, answer = self.push("u1", form="image_text", deep_link="app://x", collapse_key="ck")
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["decision"], "allow", answer)
        mid = answer["message_id"]
        msg = got.get(timeout=10)
        payload = json.loads(msg.payload)
        self.assertEqual(payload["id"], mid)
        self.assertEqual(payload["account_id"], "news")
        self.assertEqual(payload["form"], "image_text")
        self.assertEqual(payload["title"], "Hi Li Lei")
        self.assertEqual(payload["body"], "News from Shenzhen")
        self.assertEqual(payload["collapse_key"], "ck")
        self.assertEqual(payload["deep_link"], "app://x")
        self.assertIn("expires_at", payload)
        self.assertNotIn("folded", payload)
        status, m = self.message(mid, lambda m: m["outcome"] == "delivered")
        self.assertEqual((status, m["outcome"], m["user_id"]), (200, "delivered", "u1"), m)
        client.publish("r/u1", json.dumps({"message_id": mid, "type": "opened"}), qos=1)
        status, m = self.message(mid, lambda m: m["receipts"])
        self.assertEqual([r["type"] for r in m["receipts"]], ["opened"], m)
        # A service account's push is shown folded.
        self.ok("POST", "/v1/accounts", {"id": "svc", "type": "service", "name": "Svc"})
        status, answer = self.push("u1", account="svc")
        self.assertEqual(answer["decision"], "allow", answer)
        self.assertTrue(json.loads(got.get(timeout=10).payload)["folded"])
        self.assertEqual(self.req("GET", "/v1/messages/m-nope")[0], 404)

    def test_a_new_followers_sixth_push_on_day_one_is_suppressed(self):
        self.setup_user("u2")
        decisions = []
        for i in range(6):
            status, answer = self.push("u2", title="n%d" % i)
            self.assertEqual(status, 200, answer)
            decisions.append((answer["decision"], answer["rule"]))
        self.assertEqual(decisions[:5], [("allow", "allowed")] * 5)
        self.assertEqual(decisions[5][0], "suppress", decisions)
        self.assertEqual(decisions[5][1], "new_follower_first_days", decisions)
        # A transactional push is not a marketing push: it still goes.
        status, answer = self.push("u2", title="code 1234", priority="transactional")
        self.assertEqual(answer["decision"], "allow", answer)
        # Every push is recorded with its decision, the suppressed one too.
        deadline = time.time() + 10
        while time.time() < deadline:
            d = self.ok("GET", "/v1/users/u2/decisions?limit=20")["decisions"]
            if len(d) >= 7:
                break
            time.sleep(0.05)
        self.assertEqual(len(d), 7, d)
        suppressed = [x for x in d if x["decision"] == "suppress"]
        self.assertEqual([x["rule"] for x in suppressed], ["new_follower_first_days"], d)

    def test_bad_input_names_the_field(self):
        self.setup_user("u3")
        cases = [
            ({"user_id": "u3", "account_id": "nope", "message": {"title": "x"}}, 404, "account_id"),
            ({"user_id": "ghost", "account_id": "news", "message": {"title": "x"}}, 404, "user_id"),
            ({"user_id": "u3", "account_id": "news", "message": {"title": "x", "ttl_s": 0}}, 400, "message.ttl_s"),
            ({"user_id": "u3", "account_id": "news", "message": {"title": "{{user.shoe}}"}}, 400, "message.title"),
            ({"user_id": "u3", "account_id": "news", "message": {"title": "x", "body": "b" * (2 << 20)}}, 400,
             "message.body"),
            ({"user_id": "u3", "account_id": "news"}, 400, "message"),
            ({"user_id": "u3", "account_id": "news", "message": {"title": "x"}, "when": 1}, 400, "when"),
        ]
        for body, code, field in cases:
            status, answer = self.req("POST", "/v1/push", body)
            self.assertEqual(status, code, (body.get("message", {}).get("title"), answer))
            self.assertTrue(answer["error"]["message"].startswith(field), answer)
        status, answer = self.push("u3")
        self.assertEqual(answer["decision"], "allow", answer)

    def campaign(self, cid, want):
        deadline = time.time() + 10
        while True:
            c = self.ok("GET", "/v1/campaigns/" + cid)
            if want(c) or time.time() > deadline:
                return c
            time.sleep(0.05)

    def test_a_campaign_reaches_the_followers_and_counts_its_funnel(self):
        self.setup_user("c1")
        self.ok("POST", "/v1/users", {"users": [{"id": "c%d" % i, "profile": {"name": "U%d" % i}} for i in range(2, 6)]})
        self.ok("POST", "/v1/follows", {"follows": [{"user_id": "c%d" % i, "account_id": "news",
                                                     "followed_at": "2026-03-02T01:00:00Z"} for i in range(2, 6)]})
        client, got = self.device("c1")
        body = {"account_id": "news", "target": {"followers_of": "news"}, "schedule": {"type": "now"},
                "message": {"form": "text", "title": "Morning {{user.name}}", "body": "Top stories"}}
        status, created, _ = self.s.request("POST", "/v1/campaigns", body, key=self.k,
                                            headers={"Idempotency-Key": "camp-1"})
        self.assertEqual(status, 201, created)
        cid = created["id"]
        payload = json.loads(got.get(timeout=10).payload)
        self.assertEqual((payload["campaign_id"], payload["account_id"], payload["title"]),
                         (cid, "news", "Morning Li Lei"))
        c = self.campaign(cid, lambda c: c["status"] == "sent" and c["funnel"]["delivered"] >= 1)
        self.assertEqual(c["funnel"]["targeted"], 5, c)
        self.assertEqual(c["funnel"]["sent"], 5, c)
        self.assertEqual(c["funnel"]["delivered"], 1, c)  # only c1 has a device
        # Planned on every partition: all of them done, every follower decided, all handed over.
        self.assertEqual(c["progress"]["partitions"], 64, c)
        self.assertEqual(c["progress"]["partitions_done"], 64, c)
        self.assertEqual((c["progress"]["decided"], c["progress"]["dispatched"]), (5, 5), c)
        client.publish("r/c1", json.dumps({"message_id": payload["id"], "type": "opened"}), qos=1)
        c = self.campaign(cid, lambda c: c["funnel"]["opened"] == 1)
        self.assertEqual(c["funnel"]["opened"], 1, c)
        # A retried create with the same key is the same campaign, sent once.
        status, again, _ = self.s.request("POST", "/v1/campaigns", body, key=self.k,
                                          headers={"Idempotency-Key": "camp-1"})
        self.assertEqual((status, again["id"]), (200, cid))
        self.assertTrue(got.empty())
        self.assertEqual([x["id"] for x in self.ok("GET", "/v1/campaigns")["campaigns"]], [cid])
        status, metrics, _ = self.s.request("GET", "/metrics")
        self.assertIn('herald_engine_campaigns{status="sent"} 1', metrics)
        self.assertIn('herald_engine_pushes_total{decision="allow"}', metrics)
        # A segment target and an explicit list.
        status, seg = self.req("POST", "/v1/campaigns", {"account_id": "news", "target": {"segment": 'city = "Shenzhen"'},
                                                          "message": {"title": "x"}})
        self.assertEqual(status, 201, seg)
        c = self.campaign(seg["id"], lambda c: c["status"] != "planning")
        self.assertEqual((c["status"], c["funnel"]["targeted"]), ("sent", 1), c)
        status, lst = self.req("POST", "/v1/campaigns", {"account_id": "news", "target": {"users": ["c2", "nobody"]},
                                                          "message": {"title": "x"}})
        c = self.campaign(lst["id"], lambda c: c["status"] != "planning")
        self.assertEqual(c["funnel"]["targeted"], 2, c)
        self.assertEqual(c["funnel"]["suppressed"].get("unknown_user"), 1, c)
        self.assertEqual(self.req("POST", "/v1/campaigns/%s/cancel" % lst["id"])[0], 409)

    def test_bad_campaigns_name_the_field_and_nothing_is_lost(self):
        self.setup_user("b1")
        self.ok("POST", "/v1/accounts", {"id": "shop", "type": "ad", "name": "Shop"})
        self.ok("POST", "/v1/accounts", {"id": "daily", "type": "subscription", "name": "Daily"})
        good = {"account_id": "news", "target": {"users": ["b1"]}, "message": {"title": "x"}}
        ad = dict(good, account_id="shop")
        cases = [
            (dict(ad, bid=-1, budget=10), 400, "bid: must be a positive number"),
            (dict(ad, bid=0.5, budget=0), 400, "budget: must be a positive number"),
            (dict(ad, bid=0.5), 400, "budget"),
            (ad, 400, "bid: an ad account's campaign needs a bid"),
            (dict(good, bid=0.5, budget=10), 400, "bid: only an ad account's campaign"),
            (dict(good, schedule={"type": "digest"}), 400, "schedule.type: a digest is for a subscription account"),
            (dict(good, account_id="daily"), 400, "schedule.type: daily is a subscription account"),
            (dict(good, account_id="nope"), 404, "account_id"),
            (dict(good, target={"users": []}), 400, "target.users: the audience is empty"),
            (dict(good, message={"title": "{{user.shoe}}"}), 400, "message.title"),
            (dict(good, message={"title": "x", "ttl_s": 0}), 400, "message.ttl_s"),
            (dict(good, schedule={"type": "window", "from": "2026-03-03T10:00:00Z", "to": "2026-03-03T09:00:00Z"}),
             400, "schedule.to: the window ends before it starts"),
            (dict(good, schedule={"type": "at", "local_time": "25:00"}), 400, "schedule.local_time"),
            (dict(good, message={"title": "x", "body": "b" * (2 << 20)}), 400, "message.body"),
            (dict(good, target={"segment": "age >>= 3"}), 400, "target.segment"),
            (dict(good, colour="red"), 400, "colour"),
        ]
        for body, code, field in cases:
            status, answer = self.req("POST", "/v1/campaigns", body)
            self.assertEqual(status, code, (field, answer))
            self.assertTrue(answer["error"]["message"].startswith(field), answer)
        self.assertEqual(self.ok("GET", "/v1/campaigns")["campaigns"], [])
        status, c = self.req("POST", "/v1/campaigns", good)
        self.assertEqual(status, 201, c)
        self.assertEqual(self.campaign(c["id"], lambda c: c["status"] == "sent")["funnel"]["sent"], 1)

    def advance_to(self, iso):
        self.ok("POST", "/v1/admin/clock", {"set": iso})

    def test_at_0800_local_reaches_each_user_at_their_own_0800_once_across_kill9(self):
        # The clock starts at 2026-03-02T02:00Z: 10:00 in Shanghai, 21:00 (Mar 1) in New York.
        self.ok("POST", "/v1/accounts", {"id": "news", "type": "business", "name": "News"})
        self.ok("POST", "/v1/users", {"users": [
            {"id": "sh", "tz": "Asia/Shanghai", "profile": {"name": "Wei"}},
            {"id": "ny", "tz": "America/New_York", "profile": {"name": "Ann"}}]})
        self.ok("POST", "/v1/follows", {"follows": [{"user_id": u, "account_id": "news",
                                                     "followed_at": "2025-01-01T00:00:00Z"} for u in ("sh", "ny")]})
        status, c = self.req("POST", "/v1/campaigns", {
            "account_id": "news", "target": {"followers_of": "news"},
            "schedule": {"type": "at", "local_time": "08:00"},
            "message": {"title": "Good morning {{user.name}}", "ttl_s": 7200}})
        self.assertEqual(status, 201, c)
        cid = c["id"]
        c = self.campaign(cid, lambda c: c["status"] != "planning")
        self.assertEqual((c["status"], c["funnel"]["scheduled"]), ("scheduled", 2), c)
        sh, got_sh = self.device("sh")
        ny, got_ny = self.device("ny")
        # kill -9 with both entries pending: they are on disk, not in memory.
        self.s.stop(signal.SIGKILL)
        self.clients = []
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        sh, got_sh = self.device("sh")
        ny, got_ny = self.device("ny")
        self.advance_to("2026-03-02T12:59:00Z")      # 07:59 in New York
        time.sleep(0.3)
        self.assertTrue(got_ny.empty() and got_sh.empty())
        self.advance_to("2026-03-02T13:00:00Z")      # 08:00 in New York (EST)
        p = json.loads(got_ny.get(timeout=10).payload)
        self.assertEqual((p["campaign_id"], p["title"]), (cid, "Good morning Ann"))
        self.assertTrue(got_sh.empty())
        # A crash after New York's push: it is not sent again.
        self.s.stop(signal.SIGKILL)
        self.clients = []
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        sh, got_sh = self.device("sh")
        self.advance_to("2026-03-03T00:00:00Z")      # 08:00 in Shanghai
        p = json.loads(got_sh.get(timeout=10).payload)
        self.assertEqual(p["title"], "Good morning Wei")
        self.advance_to("2026-03-03T13:00:00Z")      # a day later: nothing more fires
        time.sleep(0.3)
        self.assertTrue(got_sh.empty())
        c = self.campaign(cid, lambda c: c["funnel"]["sent"] == 2)
        self.assertEqual(c["funnel"]["sent"], 2, c)
        # A cancelled scheduled campaign sends nothing.
        status, c2 = self.req("POST", "/v1/campaigns", {
            "account_id": "news", "target": {"users": ["sh"]}, "schedule": {"type": "at", "local_time": "09:00"},
            "message": {"title": "never", "priority": "transactional"}})
        self.campaign(c2["id"], lambda c: c["status"] == "scheduled")
        self.assertEqual(self.req("POST", "/v1/campaigns/%s/cancel" % c2["id"])[0], 200)
        self.advance_to("2026-03-04T02:00:00Z")
        time.sleep(0.3)
        self.assertTrue(got_sh.empty())
        self.assertEqual(self.ok("GET", "/v1/campaigns/" + c2["id"])["funnel"]["sent"], 0)

    def test_an_acknowledged_push_survives_kill9(self):
        self.setup_user("u4")
        status, answer = self.push("u4")
        self.assertEqual(answer["decision"], "allow", answer)
        mid = answer["message_id"]
        self.s.stop(signal.SIGKILL)
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        status, m = self.message(mid, lambda m: True)
        self.assertEqual((status, m["user_id"], m["account_id"]), (200, "u4", "news"), m)


if __name__ == "__main__":
    unittest.main()
