"""Test certificates made with openssl: a CA, and a server certificate for some IP addresses signed by it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_certificates(directory: Path, hosts: list[str]) -> dict[str, str]:
    """Paths of ca.pem, server.pem and server.key in ``directory``; the certificate names every host by IP."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    directory.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=nats", "-keyout", "server.key", "-out", "server.csr")
    names = ",".join(f"IP:{host}" for host in hosts)
    # Routes and leaf connections present the same certificate as clients see: it serves both ways.
    (directory / "san.ext").write_text(f"subjectAltName={names}\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem")  # fmt: skip
    return {name: str(directory / name) for name in ("ca.pem", "server.pem", "server.key")}
