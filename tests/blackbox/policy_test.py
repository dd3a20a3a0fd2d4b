"""Black-box tests of the policy through the API on the virtual clock: accounts, users,
follows and push events, then /v1/policy/check and /v1/users/{id}/decisions, across
kill -9; bad input; `herald policy replay`."""
import json
import os
import shutil
import signal
import tempfile
import time
import unittest

from harness import Server, run_herald

SH = "+08:00"


def ts(day, hh, mm=0):
    return "2026-03-%02dT%02d:%02d:00%s" % (day, hh, mm, SH)


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.conf_dir = tempfile.mkdtemp(prefix="herald-conf-")
        self.conf = os.path.join(self.conf_dir, "policy.toml")
        with open(self.conf, "w") as f:
            f.write('[server]\nvirtual_clock_start = "2026-03-01T00:00:00Z"\n'
                    "[stream]\ncheckpoint_interval_ms = 50\n")
        self.data_dir = tempfile.mkdtemp(prefix="herald-bb-policy-")
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        self.k = self.s.admin_key

    def tearDown(self):
        self.s.cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.conf_dir, ignore_errors=True)

    def req(self, method, path, body=None, server=None):
        return (server or self.s).request(method, path, body, key=self.k)[:2]

    def ok(self, method, path, body=None):
        status, answer = self.req(method, path, body)
        self.assertEqual(status, 200, (path, answer))
        return answer

    def check(self, user, account, server=None, **message):
        body = {"user_id": user, "account_id": account}
        if message:
            body["message"] = message
        status, answer = self.req("POST", "/v1/policy/check", body, server)
        self.assertEqual(status, 200, answer)
        return answer

    def decisions(self, user, server=None, want=None):
        """The user's decisions, once `want` of them are there (applies are asynchronous)."""
        deadline = time.time() + 10
        while True:
            status, answer = self.req("GET", "/v1/users/%s/decisions?limit=20" % user, None, server)
            self.assertEqual(status, 200, answer)
            if want is None or len(answer["decisions"]) >= want or time.time() > deadline:
                return answer["decisions"]
            time.sleep(0.05)

    def set_clock(self, when, server=None):
        status, answer = self.req("POST", "/v1/admin/clock", {"set": when}, server)
        self.assertEqual(status, 200, answer)

    def populate(self):
        for acct in ({"id": "svc", "type": "service", "name": "Service"},
                     {"id": "biz", "type": "business"},
                     {"id": "sub", "type": "subscription"}):
            self.assertEqual(self.ok("POST", "/v1/accounts", acct)["type"], acct["type"])
        self.ok("POST", "/v1/users", {"users": [{"id": "u1", "tz": "Asia/Shanghai"},
                                                {"id": "u2", "tz": "America/Los_Angeles"}]})
        got = self.ok("POST", "/v1/follows", {"follows": [
            {"user_id": "u1", "account_id": "svc", "followed_at": "2026-01-01T00:00:00Z"},
            {"user_id": "u1", "account_id": "biz", "followed_at": 1767225600},
            {"user_id": "u2", "account_id": "svc", "followed_at": "2026-01-01T00:00:00Z"}]})
        self.assertEqual(got, {"upserted": 3})
        events = []
        # Five service pushes, each opened: the fifth breaks the monthly 4.
        for day in range(2, 7):
            m = "svc-%d" % day
            events += [{"user_id": "u1", "type": "sent", "ts": ts(day, 12), "account_id": "svc", "message_id": m},
                       {"user_id": "u1", "type": "delivered", "ts": ts(day, 12, 1), "message_id": m},
                       {"user_id": "u1", "type": "opened", "ts": ts(day, 13), "message_id": m}]
        # Three business pushes left unopened.
        for hh in (8, 9, 10):
            m = "biz-%d" % hh
            events += [{"user_id": "u1", "type": "sent", "ts": ts(8, hh), "account_id": "biz", "message_id": m},
                       {"user_id": "u1", "type": "delivered", "ts": ts(8, hh), "message_id": m}]
        answer = self.ok("POST", "/v1/events", events)
        self.assertEqual(answer["accepted"], len(events), answer)
        self.assertEqual(len(self.decisions("u1", want=8)), 8)
        self.set_clock("2026-03-10T04:00:00Z")  # 12:00 in Shanghai

    def answers(self, server=None):
        return {
            "biz": self.check("u1", "biz", server),
            "svc": self.check("u1", "svc", server),
            "svc_tx": self.check("u1", "svc", server, priority="transactional"),
            "sub": self.check("u1", "sub", server),
            "u2": self.check("u2", "svc", server),
            "decisions": self.decisions("u1", server, want=8),
            "decisions_u2": self.decisions("u2", server),
        }

    def test_check_and_decisions_are_explained_and_the_same_after_kill9(self):
        self.populate()
        before = self.answers()
        biz = before["biz"]
        self.assertEqual((biz["decision"], biz["rule"]), ("suppress", "fatigue_silence"), biz)
        self.assertEqual(biz["explanation"],
                         "suppressed: 3 consecutive unopened pushes (08:00, 09:00, 10:00 on 8 March); "
                         "silent until 11 March 10:00")
        self.assertEqual(biz["until"], "2026-03-11T02:00:00Z")
        self.assertEqual(before["svc"]["rule"], "fatigue_silence")
        self.assertEqual((before["svc_tx"]["decision"], before["sub"]["rule"]),
                         ("allow", "subscription_account"))
        self.assertEqual(before["u2"]["decision"], "allow", before["u2"])
        d = before["decisions"]
        self.assertEqual([x["message_id"] for x in d],
                         ["biz-10", "biz-9", "biz-8", "svc-6", "svc-5", "svc-4", "svc-3", "svc-2"])
        # biz is a settled follow (1 a day): its 09:00 and 10:00 pushes broke the rule.
        self.assertEqual([x["decision"] for x in d], ["suppress"] * 2 + ["allow"] + ["suppress"] + ["allow"] * 4)
        self.assertEqual([d[0]["rule"], d[2]["rule"], d[3]["rule"]],
                         ["new_follower_daily", "allowed", "service_monthly_cap"])
        self.assertIn("4 of 4 pushes this month from service account svc", d[3]["explanation"])
        self.assertEqual(d[3]["counters"]["count"], 4)

        # Moving the clock checkpointed every partition. Pushes to u2 after that are
        # in the log only when herald is killed: the restart loads the checkpoints
        # and replays them.
        self.ok("POST", "/v1/events", [
            {"user_id": "u2", "type": "sent", "ts": "2026-03-10T04:00:00Z", "account_id": "svc",
             "message_id": "u2-a"},
            {"user_id": "u2", "type": "sent", "ts": "2026-03-10T04:01:00Z", "account_id": "svc",
             "message_id": "u2-b"}])
        self.assertEqual(len(self.decisions("u2", want=2)), 2)
        before = self.answers()
        self.assertEqual([x["rule"] for x in before["decisions_u2"]], ["new_follower_daily", "allowed"])
        self.assertEqual(before["u2"]["rule"], "new_follower_daily")
        self.assertEqual(self.s.stop(signal.SIGKILL), -signal.SIGKILL)
        self.s.cleanup()
        self.s = Server("--virtual-clock", data_dir=self.data_dir, config=self.conf)
        self.assertEqual(self.answers(), before)

        # The silence ends exactly 48 hours after the third push became unopened.
        self.set_clock("2026-03-11T01:59:59Z")
        self.assertEqual(self.check("u1", "biz")["rule"], "fatigue_silence")
        self.set_clock("2026-03-11T02:00:00Z")
        self.assertEqual(self.check("u1", "biz")["decision"], "allow")
        # A check is a dry run: it left no decision behind.
        self.assertEqual(len(self.decisions("u1")), 8)

    def test_bad_input_names_the_field_and_loses_nothing(self):
        self.populate()
        cases = [
            ("POST", "/v1/accounts", {"id": "x", "type": "newsletter"}, 400, "type"),
            ("POST", "/v1/accounts", {"type": "service"}, 400, "id"),
            ("POST", "/v1/accounts", {"id": "x", "type": "service", "quality": 3}, 400, "quality"),
            ("POST", "/v1/accounts", {"id": "x", "type": "business", "pack": {
                "factor": 10, "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}}, 400, "pack.factor"),
            ("POST", "/v1/accounts", {"id": "x", "type": "business", "pack": {
                "factor": 4, "from": "2026-04-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}}, 400, "pack.to"),
            ("POST", "/v1/accounts", {"id": "x", "type": "business", "pack": {"factor": 4}}, 400, "pack.from"),
            ("POST", "/v1/follows", {"follows": [{"user_id": "u1", "account_id": "nope"}]}, 404,
             "follows[0].account_id"),
            ("POST", "/v1/follows", {"follows": [{"user_id": "u1", "account_id": "biz",
                                                  "followed_at": "yesterday"}]}, 400,
             "follows[0].followed_at"),
            ("POST", "/v1/follows", {"follows": [{"account_id": "biz"}]}, 400, "follows[0].user_id"),
            ("POST", "/v1/policy/check", {"user_id": "ghost", "account_id": "biz"}, 404, "user_id"),
            ("POST", "/v1/policy/check", {"user_id": "u1", "account_id": "nope"}, 404, "account_id"),
            ("POST", "/v1/policy/check", {"user_id": "u1", "account_id": "biz", "at": "soon"}, 400, "at"),
            ("POST", "/v1/policy/check", {"user_id": "u1", "account_id": "biz",
                                          "message": {"priority": "loud"}}, 400, "message.priority"),
            ("GET", "/v1/users/u1/decisions?limit=0", None, 400, "limit"),
            ("GET", "/v1/users/ghost/decisions", None, 404, "ghost"),
        ]
        for method, path, body, want, field in cases:
            status, answer = self.req(method, path, body)
            self.assertEqual(status, want, (path, body, answer))
            self.assertIn(field, answer["error"]["message"], (path, body, answer))
        status, answer = self.s.request("POST", "/v1/follows", "{not json", key=self.k)[:2]
        self.assertEqual((status, answer["error"]["code"]), (400, "invalid_json"))
        # Nothing of the refused batches was applied; what was accepted is still there.
        self.assertTrue(self.check("u1", "biz")["following"])
        self.assertEqual(len(self.decisions("u1")), 8)
        self.assertEqual(self.ok("GET", "/v1/accounts/svc")["type"], "service")
        self.assertEqual(self.req("GET", "/v1/accounts/x")[0], 404)
        # A valid acceleration pack is stored with the account and shown.
        pack = {"factor": 4, "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        self.ok("POST", "/v1/accounts", {"id": "creator", "type": "business", "pack": pack})
        self.assertEqual(self.ok("GET", "/v1/accounts/creator")["pack"], pack)
        # An unfollow ends the follow.
        self.assertEqual(self.ok("DELETE", "/v1/follows", {"follows": [{"user_id": "u1", "account_id": "biz"}]}),
                         {"removed": 1})
        deadline = time.time() + 10
        while self.check("u1", "biz")["following"] and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(self.check("u1", "biz")["following"])

    def test_a_config_with_a_negative_cap_is_refused(self):
        bad = os.path.join(self.conf_dir, "bad.toml")
        with open(bad, "w") as f:
            f.write("[policy]\ndaily_cap = -1\n")
        code, _, err = run_herald("config", "check", bad)
        self.assertEqual(code, 2)
        self.assertIn("policy.daily_cap", err)
        with open(bad, "w") as f:
            f.write('[policy]\nquiet_start = "25:00"\n')
        code, _, err = run_herald("config", "check", bad)
        self.assertEqual(code, 2)
        self.assertIn("policy.quiet_start", err)

    def test_replay_compares_two_configs_on_a_file_and_on_a_data_directory(self):
        self.populate()
        self.assertEqual(self.s.stop(), 0)
        strict = os.path.join(self.conf_dir, "strict.toml")
        with open(strict, "w") as f:
            f.write("[policy]\nservice_monthly_cap = 2\n")
        code, out, err = run_herald("policy", "replay", "--events", self.data_dir, "--config", strict,
                                    "--accounts", self.accounts_file())
        self.assertEqual(code, 0, err)
        self.assertIn("alternative", out)
        rows = {line[:42].strip(): line[42:].split() for line in out.splitlines()[2:]}
        self.assertEqual(rows["candidate pushes (sent events)"], ["8", "8"])
        self.assertEqual(rows["suppressed: service_monthly_cap"], ["1", "3"])
        events = os.path.join(self.conf_dir, "events.ndjson")
        with open(events, "w") as f:
            for i in range(6):
                f.write(json.dumps({"user_id": "r1", "type": "sent", "ts": 1772366400 + 60 * i,
                                    "account_id": "svc", "message_id": "r%d" % i}) + "\n")
            f.write("not json\n")
        code, out, err = run_herald("policy", "replay", "--events", events, "--config", strict,
                                    "--accounts", self.accounts_file())
        self.assertEqual(code, 0, err)
        self.assertIn("1 rejected", out)
        rows = {line[:42].strip(): line[42:].split() for line in out.splitlines()[2:]}
        self.assertEqual(rows["allowed"], ["4", "2"])
        code, _, err = run_herald("policy", "replay", "--events", "/nonexistent")
        self.assertNotEqual(code, 0)
        self.assertIn("cannot open", err)

    def accounts_file(self):
        path = os.path.join(self.conf_dir, "accounts.ndjson")
        with open(path, "w") as f:
            f.write('{"id":"svc","type":"service"}\n{"id":"biz","type":"business"}\n')
        return path


if __name__ == "__main__":
    unittest.main()
