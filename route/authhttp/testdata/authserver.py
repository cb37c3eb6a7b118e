#!/usr/bin/env python3
"""A small nginx mail auth_http service, as operators write them.

Usage: authserver.py USERS_FILE
USERS_FILE holds one line per account:
    account password backend-host backend-port [tls-mode] [backend-login]
(account and password URL-escaped, "%20" for a space).
The server listens on 127.0.0.1 on a free port and prints "PORT <n>"
when it is ready.
"""
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load(path):
    users = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            # account and password are URL-escaped in the file ("%20" for a space)
            users[urllib.parse.unquote(parts[0])] = [urllib.parse.unquote(parts[1])] + parts[2:]
    return users


class Handler(BaseHTTPRequestHandler):
    users = {}

    def do_GET(self):
        user = urllib.parse.unquote(self.headers.get("Auth-User", ""))
        password = urllib.parse.unquote(self.headers.get("Auth-Pass", ""))
        attempt = int(self.headers.get("Auth-Login-Attempt", "1"))
        method = self.headers.get("Auth-Method", "")
        protocol = self.headers.get("Auth-Protocol", "")
        self.send_response(200)
        entry = self.users.get(user)
        if protocol != "imap" or method != "plain":
            self.send_header("Auth-Status", "Unsupported protocol or method")
        elif entry is None or entry[0] != password:
            self.send_header("Auth-Status", "Invalid login or password")
            self.send_header("Auth-Wait", str(min(attempt, 10)))
        else:
            self.send_header("Auth-Status", "OK")
            self.send_header("Auth-Server", entry[1])
            self.send_header("Auth-Port", entry[2])
            if len(entry) > 3:
                self.send_header("X-Pipegate-Backend-TLS", entry[3])
            if len(entry) > 4:
                self.send_header("Auth-User", entry[4])
            self.send_header("X-Seen-Client-IP", self.headers.get("Client-IP", ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


def main():
    Handler.users = load(sys.argv[1])
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT", srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
