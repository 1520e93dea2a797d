#!/usr/bin/env python3
"""upstream.py - a site's web server for the gateway tests (behind an-serve --upstream).

upstream.py PORT DIR SECONDS: serve DIR on 127.0.0.1:PORT for SECONDS at most.
DIR/headers.json, if present, maps a path to extra response fields
({"/sw.js": {"Service-Worker-Allowed": "/"}}); a list value sends the field
once per item.  GET /echo answers the request's fields as a JSON object
(lowercase names), to show what the gateway forwarded.
"""
import http.server
import json
import os
import sys
import threading

port, root, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
try:
    with open(os.path.join(root, "headers.json")) as f:
        EXTRA = json.load(f)
except FileNotFoundError:
    EXTRA = {}


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=root, **kw)

    def end_headers(self):
        for name, value in EXTRA.get(self.path.split("?")[0], {}).items():
            for v in value if isinstance(value, list) else [value]:
                self.send_header(name, v)
        super().end_headers()

    def do_GET(self):
        if self.path.split("?")[0] == "/echo":
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
threading.Timer(seconds, srv.shutdown).start()
srv.serve_forever()
