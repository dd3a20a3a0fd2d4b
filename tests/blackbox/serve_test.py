"""Black-box tests of `herald serve`: start-up, auth, errors, signals, restart."""
import http.client
import os
import signal
import socket
import stat
import tempfile
import unittest

from harness import Server, run_herald


class ServeTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()

    def tearDown(self):
        self.server.cleanup()

    def test_prints_listening_line_and_admin_key_once(self):
        s = self.server
        for addr in (s.http, s.mqtt, s.ws):
            host, port = addr.rsplit(":", 1)
            self.assertEqual(host, "127.0.0.1")
            self.assertNotEqual(int(port), 0)
        self.assertTrue(any(s.admin_key in line for line in s.stdout_lines))
        mode = stat.S_IMODE(os.stat(os.path.join(s.data_dir, "admin.key")).st_mode)
        self.assertEqual(mode, 0o600)
        # The MQTT listeners accept connections.
        for addr in (s.mqtt, s.ws):
            host, port = addr.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=5).close()

    def test_health_metrics_and_version_are_public(self):
        s = self.server
        status, body, _ = s.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"status": "ok"})
        status, text, headers = s.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        self.assertIn("herald_http_requests_total{", text)
        self.assertIn("herald_process_resident_memory_bytes ", text)
        self.assertIn("herald_store_commits_total ", text)
        status, body, _ = s.request("GET", "/v1/version")
        self.assertEqual((status, body["name"]), (200, "herald"))

    def test_keys_authenticate_and_scope_tenants(self):
        s = self.server
        status, body, _ = s.request("GET", "/v1/tenants")
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["code"], "unauthenticated")
        status, body, _ = s.request("GET", "/v1/tenants", key="hk_not_a_key")
        self.assertEqual(status, 401)
        status, body, _ = s.request("GET", "/v1/tenants", key=s.admin_key)
        self.assertEqual(status, 200)
        self.assertEqual([t["id"] for t in body["tenants"]], ["default"])

        status, created, _ = s.request("POST", "/v1/tenants", {"id": "shop", "name": "Shop"},
                                       key=s.admin_key)
        self.assertEqual(status, 201)
        self.assertTrue(created["api_key"].startswith("hk_"))
        status, body, _ = s.request("POST", "/v1/tenants", {"id": "shop"}, key=s.admin_key)
        self.assertEqual((status, body["error"]["code"]), (409, "already_exists"))
        # A tenant key is valid but not an admin key.
        status, body, _ = s.request("GET", "/v1/tenants", key=created["api_key"])
        self.assertEqual((status, body["error"]["code"]), (403, "permission_denied"))

    def test_bad_requests_get_json_errors_and_the_server_keeps_serving(self):
        s = self.server
        k = s.admin_key
        status, body, _ = s.request("POST", "/v1/tenants", '{"id": "x",', key=k)
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["code"], "invalid_json")
        self.assertIn("byte", body["error"]["message"])
        status, body, _ = s.request("POST", "/v1/tenants", '[1,2]', key=k)
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_json"))
        status, body, _ = s.request("POST", "/v1/tenants", {"id": "a/b"}, key=k)
        self.assertEqual(status, 400)
        self.assertIn("id", body["error"]["message"])
        status, body, _ = s.request("POST", "/v1/tenants", {"id": "ok", "colour": 1}, key=k)
        self.assertEqual((status, body["error"]["code"]), (400, "unknown_field"))
        status, body, _ = s.request("GET", "/v1/no/such/route", key=k)
        self.assertEqual((status, body["error"]["code"]), (404, "route_not_found"))
        status, body, _ = s.request("DELETE", "/healthz")
        self.assertEqual((status, body["error"]["code"]), (405, "method_not_allowed"))

        # An oversized body (default limit 16 MiB) gets 413 and the connection closes.
        host, port = s.http.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/v1/tenants", body=b"x" * (17 << 20),
                     headers={"Authorization": "Bearer " + k})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        self.assertIn(b"body_too_large", resp.read())
        conn.close()

        # A request line that is not HTTP gets a 400.
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01garbage\r\n\r\n")
            self.assertIn(b" 400 ", sock.recv(4096))

        status, _, _ = s.request("GET", "/healthz")
        self.assertEqual(status, 200)
        status, text, _ = s.request("GET", "/metrics")
        self.assertIn('herald_http_requests_total{route="/v1/tenants",code="400"} 4', text)
        self.assertEqual(s.stop(), 0)

    def test_sigterm_and_sigint_exit_cleanly_and_state_survives_restart(self):
        s = self.server
        status, created, _ = s.request("POST", "/v1/tenants", {"id": "keep"}, key=s.admin_key)
        self.assertEqual(status, 201)
        self.assertEqual(s.stop(signal.SIGTERM), 0)
        self.assertIn("herald stopped", s.stderr)

        again = Server(data_dir=s.data_dir)
        try:
            # The key is printed only on first start.
            self.assertFalse(any("admin key" in line for line in again.stdout_lines))
            self.assertEqual(again.admin_key, s.admin_key)
            status, body, _ = again.request("GET", "/v1/tenants", key=s.admin_key)
            self.assertEqual([t["id"] for t in body["tenants"]], ["default", "keep"])
            status, _, _ = again.request("GET", "/v1/tenants", key=created["api_key"])
            self.assertEqual(status, 403)
            self.assertEqual(again.stop(signal.SIGINT), 0)
        finally:
            again.cleanup()

    def test_system_clock_refuses_to_move(self):
        s = self.server
        status, body, _ = s.request("GET", "/v1/admin/clock", key=s.admin_key)
        self.assertEqual((status, body["virtual"]), (200, False))
        status, body, _ = s.request("POST", "/v1/admin/clock", {"advance_s": 10}, key=s.admin_key)
        self.assertEqual((status, body["error"]["code"]), (409, "clock_not_virtual"))


class VirtualClockTest(unittest.TestCase):
    def test_advance_set_and_resume_after_restart(self):
        s = Server("--virtual-clock")
        try:
            k = s.admin_key
            status, body, _ = s.request("GET", "/v1/admin/clock", key=k)
            self.assertEqual(body["now"], "2026-01-05T00:00:00Z")
            status, body, _ = s.request("POST", "/v1/admin/clock", {"advance_s": 3600}, key=k)
            self.assertEqual((status, body["now"]), (200, "2026-01-05T01:00:00Z"))
            status, body, _ = s.request("POST", "/v1/admin/clock",
                                        {"set": "2026-01-05T10:00:00+08:00"}, key=k)
            self.assertEqual((status, body["now"]), (200, "2026-01-05T02:00:00Z"))
            status, body, _ = s.request("POST", "/v1/admin/clock",
                                        {"set": "2026-01-06T08:00:00+08:00"}, key=k)
            self.assertEqual(body["now"], "2026-01-06T00:00:00Z")
            status, body, _ = s.request("POST", "/v1/admin/clock", {"set": "2026-01-01T00:00:00Z"},
                                        key=k)
            self.assertEqual((status, body["error"]["code"]), (409, "clock_backwards"))
            for bad in ({"advance_s": -1}, {"advance_s": "1"}, {"set": "tomorrow"}, {},
                        {"advance_s": 1, "set": 0}):
                status, body, _ = s.request("POST", "/v1/admin/clock", bad, key=k)
                self.assertEqual(status, 400, bad)
            self.assertEqual(s.stop(), 0)
            again = Server("--virtual-clock", data_dir=s.data_dir)
            try:
                status, body, _ = again.request("GET", "/v1/admin/clock", key=k)
                self.assertEqual(body["now"], "2026-01-06T00:00:00Z")
            finally:
                again.stop()
                again.cleanup()
        finally:
            s.cleanup()


class StartupErrorTest(unittest.TestCase):
    def test_virtual_clock_refuses_non_loopback(self):
        with tempfile.TemporaryDirectory() as d:
            code, _, err = run_herald("serve", "--data-dir", d, "--virtual-clock",
                                      "--http-listen", "0.0.0.0:0", "--mqtt-listen", "127.0.0.1:0",
                                      "--ws-listen", "127.0.0.1:0")
            self.assertEqual(code, 2)
            self.assertIn("loopback", err)

    def test_bad_config_names_the_key(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.toml")
            with open(path, "w") as f:
                f.write("[http]\nthreads = 0\nlisen = \"x\"\n")
            code, _, err = run_herald("serve", "--config", path, "--data-dir", d)
            self.assertEqual(code, 2)
            self.assertIn("http.threads", err)
            self.assertIn("http.lisen: unknown setting", err)
            code, out, err = run_herald("config", "check", path)
            self.assertEqual(code, 2)
            good = os.path.join(d, "good.toml")
            code, defaults, _ = run_herald("config", "defaults")
            with open(good, "w") as f:
                f.write(defaults)
            code, out, _ = run_herald("config", "check", good)
            self.assertEqual(code, 0, out)

    def test_bad_flag_address(self):
        code, _, err = run_herald("serve", "--http-listen", "nowhere")
        self.assertEqual(code, 2)
        self.assertIn("--http-listen", err)

    def test_port_in_use_fails_with_a_message(self):
        with socket.socket() as busy, tempfile.TemporaryDirectory() as d:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            code, _, err = run_herald("serve", "--data-dir", d, "--http-listen",
                                      "127.0.0.1:%d" % port, "--mqtt-listen", "127.0.0.1:0",
                                      "--ws-listen", "127.0.0.1:0")
            self.assertEqual(code, 1)
            self.assertIn("cannot listen for http", err)

    def test_partition_count_cannot_change(self):
        s = Server()
        try:
            self.assertEqual(s.stop(), 0)
            cfg = os.path.join(s.data_dir, "p.toml")
            with open(cfg, "w") as f:
                f.write("[server]\npartitions = 32\n")
            code, _, err = run_herald("serve", "--config", cfg, "--data-dir", s.data_dir,
                                      "--http-listen", "127.0.0.1:0", "--mqtt-listen",
                                      "127.0.0.1:0", "--ws-listen", "127.0.0.1:0")
            self.assertEqual(code, 1)
            self.assertIn("64 partitions", err)
        finally:
            s.cleanup()


class CliTest(unittest.TestCase):
    def test_version_and_help_for_every_subcommand(self):
        code, out, _ = run_herald("--version")
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith("herald "))
        for sub in ("serve", "simulate", "bench", "train", "audit", "config"):
            code, out, _ = run_herald(sub, "--help")
            self.assertEqual(code, 0, sub)
            self.assertIn("Usage", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
