"""The service answers over real HTTP. Plain unittest, so the image build can run these with the
standard library alone; pytest runs them too."""
from __future__ import annotations

import json
import threading
import unittest
import urllib.error
import urllib.request

from service.main import SERVICE, make_server


class ServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = make_server(0, host="127.0.0.1")  # port 0: any free port
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def test_healthz_is_ok(self) -> None:
        self.assertEqual(self.get("/healthz"), (200, {"status": "ok"}))

    def test_index_names_the_service(self) -> None:
        status, body = self.get("/")
        self.assertEqual(status, 200)
        self.assertEqual(body["service"], SERVICE)

    def test_unknown_path_is_404(self) -> None:
        self.assertEqual(self.get("/nope")[0], 404)


if __name__ == "__main__":
    unittest.main()
