"""A local HTTP server for download tests: serves byte strings by path on 127.0.0.1, logs every request, and can cut
a transfer short (announce more bytes than it sends, then close) to stand in for a dropped connection."""

from __future__ import annotations

import http.server
import threading


class Server:
    """`files` {path: bytes} served at `url`; `requests` lists the paths asked for; paths in `cut` send half."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # the name http.server calls
                owner.requests.append(self.path)
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                short = self.path in owner.cut
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) + (4096 if short else 0)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if short else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
