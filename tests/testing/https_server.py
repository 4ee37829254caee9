#!/usr/bin/env python3
"""A scripted HTTPS server on 127.0.0.1 for tests of outbound HTTPS.

Generates its own test CA and a leaf certificate for the given names (DNS
names and IP addresses), writes the CA to DIR/ca.pem, then serves the routes
of a JSON file:

    {"/path": {"status": 200, "headers": {"Cache-Control": "max-age=60"},
               "body": "...", "repeat": 1, "delay_ms": 0}}

"{port}" in a header value becomes the server's port. A key "HOST/path" (HOST without port) is matched before "/path". Unknown
paths get 404. The routes file is read on every request: rewrite it to change
what is served. Each request is appended to DIR/requests.jsonl as
{"method", "path", "host", "sni", "body"}. Prints "PORT <n>" on stdout once
it listens. Options: --min-tls/--max-tls (1.2 or 1.3) restrict the versions
offered.

Usage: https_server.py --dir DIR --names a.test,127.0.0.1 --routes ROUTES.json
"""
import argparse
import datetime
import http.server
import ipaddress
import json
import os
import ssl
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def make_leaf(directory, stem, names, issuer, not_before, not_after):
    """A leaf certificate for `names` written to DIR/STEM.pem and STEM.key,
    issued by `issuer` ((ca certificate, ca key), as make_pki's ca_out
    gives) or self-signed when it is None. (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    issuer_name, signer = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    leaf = (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer.public_key()), critical=False)
            .sign(signer, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    cert_path = os.path.join(directory, stem + ".pem")
    key_path = os.path.join(directory, stem + ".key")
    with open(cert_path, "wb") as f:
        f.write(leaf.public_bytes(pem))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def make_pki(directory, names, ca_out=None):
    """A fresh test CA (DIR/ca.pem) and a leaf for `names` (DIR/server.pem,
    DIR/server.key); (cert path, key path). With `ca_out` (a list), the CA
    certificate and key are appended to it as one pair, for more leaves."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyverifier test CA")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    if ca_out is not None:
        ca_out.append((ca, ca_key))
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    cert_path = os.path.join(directory, "server.pem")
    key_path = os.path.join(directory, "server.key")
    with open(cert_path, "wb") as f:
        f.write(leaf.public_bytes(pem))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--names", required=True)
    p.add_argument("--routes", required=True)
    p.add_argument("--min-tls", default="1.2")
    p.add_argument("--max-tls", default="1.3")
    args = p.parse_args()

    def load_routes():
        # Read on every request, so a test can change what is served.
        with open(args.routes) as f:
            return json.load(f)
    cert, key = make_pki(args.dir, args.names.split(","))
    log_path = os.path.join(args.dir, "requests.jsonl")
    log_lock = threading.Lock()
    sni_by_thread = {}

    versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = versions[args.min_tls]
    ctx.maximum_version = versions[args.max_tls]
    ctx.load_cert_chain(cert, key)

    def remember_sni(sock, name, _ctx):
        sock.sni = name

    ctx.sni_callback = remember_sni

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            entry = {"method": self.command, "path": self.path,
                     "host": self.headers.get("Host"),
                     "sni": getattr(self.connection, "sni", None), "body": body}
            with log_lock:
                with open(log_path, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            routes = load_routes()
            route = routes.get(host + self.path, routes.get(self.path))
            if route is None:
                route = {"status": 404, "body": "{\"errcode\":\"M_NOT_FOUND\"}"}
            time.sleep(route.get("delay_ms", 0) / 1000.0)
            payload = (route.get("body", "") * route.get("repeat", 1)).encode()
            self.send_response(route.get("status", 200))
            for k, v in route.get("headers", {}).items():
                self.send_header(k, v.replace("{port}", str(self.server.server_address[1])))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = handle_any
        do_POST = handle_any

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, addr = self.socket.accept()
            return ctx.wrap_socket(sock, server_side=True,
                                   do_handshake_on_connect=False), addr

        def finish_request(self, request, client_address):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
            super().finish_request(request, client_address)

    httpd = Server(("127.0.0.1", 0), Handler)
    print("PORT %d" % httpd.server_address[1], flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
