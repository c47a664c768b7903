"""The cluster secret, and what it authenticates: Raft traffic and the node-to-node RPC links.

pysyncobj unpickles whatever reaches its port unless it is given a password, so a node that
anyone can reach runs anyone's code. Every cluster therefore has a secret — 32 random bytes, hex
in a file of mode 0600 beside the data (``cluster.secret``), made by ``walrus cluster up``, the
harness's backends or ``walrus secret new`` — and a node refuses to start without one unless told
``--insecure``. From the secret, by HMAC-SHA256 with a label per purpose (so no key serves two
purposes):

- the Raft password: pysyncobj encrypts and authenticates every message with Fernet under a key
  derived from it (and drops anything else before unpickling);
- the RPC key: a connection to a node's RPC port starts with the server's ``CHALLENGE <nonce>``;
  the caller answers ``HELLO <node> <fingerprint> <nonce> <proof>`` (an HMAC over both nonces, its
  id and the cluster's fingerprint), the server answers ``OK <proof>`` over the nonces the other
  way round, so each side proves it holds the secret without sending it, and neither a recorded
  handshake nor one reflected back can be replayed (the nonces are fresh per connection). Every
  later frame, both ways, carries a 16-byte HMAC tag under a session key drawn from both nonces,
  over its direction, its sequence number and its body: a frame that is forged, altered, replayed,
  reordered or dropped fails its check and the connection is closed.

Client ports stay as Walrus has them: unauthenticated, plain text.
"""

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "cluster.secret"
SECRET_ENV = "WALRUS_CLUSTER_SECRET"
NONCE_BYTES = 16
TAG_BYTES = 16


class AuthError(ValueError):
    """A secret that cannot be used, or a peer that failed to prove it holds the secret."""


def new_secret() -> str:
    """A fresh secret: 32 random bytes, hex."""
    return secrets.token_hex(32)


def write_secret(path: Path) -> str:
    """Create ``path`` (mode 0600) holding a new secret, unless it exists; the secret in it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret(path)
    with os.fdopen(fd, "w") as f:
        secret = new_secret()
        f.write(secret + "\n")
        f.flush()
        os.fsync(f.fileno())
    return secret


def secret_args(root: Path) -> list[str]:
    """``--cluster-secret-file`` with the cluster secret kept in ``root`` (made if missing): what
    a launcher of this repository's nodes passes to each."""
    root.mkdir(parents=True, exist_ok=True)
    path = (root / SECRET_FILE).resolve()
    write_secret(path)
    return ["--cluster-secret-file", str(path)]


def read_secret(path: Path) -> str:
    """The secret in ``path``; AuthError, saying why, if it is missing, empty or readable by
    other users."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise AuthError(f"cannot read the cluster secret {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise AuthError(
            f"the cluster secret {path} is readable by others (mode {mode & 0o777:o}): "
            f"chmod 600 {path}"
        )
    return check_secret(text, str(path))


def check_secret(text: str, where: str) -> str:
    """``text`` if it can serve as a secret (at least 32 characters), else AuthError."""
    if len(text) < 32:
        raise AuthError(
            f"the cluster secret in {where} is too short ({len(text)} characters; at least 32): "
            "make one with `walrus secret new FILE`"
        )
    return text


def derive(secret: str, purpose: str) -> bytes:
    """A key for one purpose, drawn from the secret."""
    return hmac.new(secret.encode(), b"walrus/" + purpose.encode(), hashlib.sha256).digest()


def raft_password(secret: str) -> str:
    """pysyncobj's password."""
    return derive(secret, "raft").hex()


def nonce() -> bytes:
    """A fresh random nonce."""
    return secrets.token_bytes(NONCE_BYTES)


def _mac(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(4, "big") + part)
    return mac.digest()


def hello_proof(key: bytes, server: bytes, client: bytes, node: int, fingerprint: str) -> str:
    """The caller's proof: it holds the key, for this connection's nonces, as this node."""
    return _mac(key, b"hello", server, client, str(node).encode(), fingerprint.encode()).hex()


def welcome_proof(key: bytes, server: bytes, client: bytes) -> str:
    """The server's proof in return."""
    return _mac(key, b"welcome", client, server).hex()


def proven(expected: str, given: str) -> bool:
    """Compare proofs in constant time."""
    return hmac.compare_digest(expected.encode(), given.encode())


class Seal:
    """Tags and checks the frames of one authenticated connection, one direction each way."""

    def __init__(self, key: bytes, server: bytes, client: bytes, side: str) -> None:
        session = _mac(key, b"session", server, client)
        self._key = session
        self._out_label, self._in_label = (b"s2c", b"c2s") if side == "server" else (b"c2s", b"s2c")
        self._out_seq = 0
        self._in_seq = 0

    def next_out(self) -> int:
        """Reserve the sequence number of the next frame sent (in sending order)."""
        seq = self._out_seq
        self._out_seq += 1
        return seq

    def seal(self, body: bytes, seq: int | None = None) -> bytes:
        """``body`` with its tag in front (``seq`` if reserved earlier, else the next)."""
        if seq is None:
            seq = self.next_out()
        return self._tag(self._out_label, seq, body) + body

    def open(self, frame: bytes) -> bytes:
        """The body of a received frame; AuthError if its tag is wrong."""
        tag, body = frame[:TAG_BYTES], frame[TAG_BYTES:]
        if len(frame) < TAG_BYTES or not hmac.compare_digest(
            tag, self._tag(self._in_label, self._in_seq, body)
        ):
            raise AuthError(f"frame {self._in_seq} failed its authentication check")
        self._in_seq += 1
        return body

    def _tag(self, label: bytes, seq: int, body: bytes) -> bytes:
        return _mac(self._key, label, seq.to_bytes(8, "big"), body)[:TAG_BYTES]
