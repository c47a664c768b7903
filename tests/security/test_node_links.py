"""Node-to-node RPC accepts only peers that prove they hold the cluster secret; a node with the
wrong secret cannot join."""

import json
import socket
import time

from walrus import auth, protocol
from walrus.client import DefiniteError
from walrus.rpc import envelope


class Conn:
    """A raw connection to a node's RPC port."""

    def __init__(self, addr) -> None:
        self.sock = socket.create_connection((addr.host, addr.port), timeout=10)
        self.frames = protocol.FrameReader(1 << 24)

    def send(self, body: bytes) -> None:
        self.sock.sendall(protocol.frame(body))

    def recv(self) -> bytes | None:
        """The next frame, or None once the node closed the connection."""
        while (body := self.frames.next_frame()) is None:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.frames.feed(data)
        return body

    def close(self) -> None:
        self.sock.close()


def handshake(conn: Conn, secret: str, me: int, fingerprint: str) -> tuple[bytes, auth.Seal]:
    """HELLO as a peer holding ``secret`` would; the node's answer and the client's seal."""
    challenge = conn.recv()
    assert challenge.startswith(b"CHALLENGE "), challenge
    server, client = bytes.fromhex(challenge.split()[1].decode()), auth.nonce()
    key = auth.derive(secret, "rpc")
    proof = auth.hello_proof(key, server, client, me, fingerprint)
    conn.send(envelope(0, 0, f"HELLO {me} {fingerprint} {client.hex()} {proof}".encode()))
    return conn.recv(), auth.Seal(key, server, client, "client")


def topic_values(cluster, topic: str) -> list[bytes]:
    with cluster.client(1) as c:
        return c.scan(topic, 1, 0, 100)["entries"]


def test_rpc_without_the_secret_is_refused_and_changes_nothing(make_cluster):
    cluster = make_cluster(nodes=1)
    fingerprint = json.loads((cluster.data_dir(1) / "node.json").read_text())["cluster"]
    secret = auth.read_secret(cluster.root / auth.SECRET_FILE)
    rpc = cluster.peers[1].rpc
    with cluster.client(1) as c:
        c.register("t")
    put = envelope(1, 0, b"PUTX t forged")

    # No HELLO at all: a forwarded PUT straight away.
    conn = Conn(rpc)
    assert conn.recv().startswith(b"CHALLENGE ")
    conn.send(put)
    assert conn.recv().startswith(b"ERR node RPC connections start with HELLO")
    assert conn.recv() is None
    # A HELLO without proof, as a node without a secret would send.
    conn = Conn(rpc)
    conn.recv()
    conn.send(envelope(0, 0, f"HELLO 2 {fingerprint}".encode()))
    assert conn.recv().startswith(b"ERR authentication required")
    assert conn.recv() is None
    # A HELLO proven with another secret.
    conn = Conn(rpc)
    reply, _ = handshake(conn, auth.new_secret(), 2, fingerprint)
    assert reply.startswith(b"ERR authentication failed")
    assert conn.recv() is None

    # With the secret: the handshake succeeds and a sealed PUTX lands (the control).
    conn = Conn(rpc)
    reply, seal = handshake(conn, secret, 2, fingerprint)
    assert reply.startswith(b"OK ")
    conn.send(seal.seal(envelope(1, 0, b"PUTX t genuine")))
    assert seal_open(conn, secret_seal=seal).startswith(b"OK 1 0")
    recorded = seal.seal(envelope(1, 0, b"PUTX t replayed"))
    # A frame with a wrong tag on the proven connection: refused, connection closed.
    tampered = bytearray(seal.seal(envelope(1, 0, b"PUTX t tampered")))
    tampered[-1] ^= 1
    conn.send(bytes(tampered))
    assert conn.recv().startswith(b"ERR frame")
    assert conn.recv() is None
    # A frame recorded on one connection, replayed on another after a fresh handshake.
    conn = Conn(rpc)
    reply, _ = handshake(conn, secret, 2, fingerprint)
    conn.send(recorded)
    assert conn.recv().startswith(b"ERR frame")
    assert topic_values(cluster, "t") == ["genuine"]


def seal_open(conn: Conn, secret_seal: auth.Seal) -> bytes:
    return secret_seal.open(conn.recv())


def test_a_node_with_the_wrong_secret_cannot_join(make_cluster, tmp_path):
    cluster = make_cluster(nodes=3, start=False)
    wrong = tmp_path / "wrong.secret"
    auth.write_secret(wrong)
    good = cluster.args
    cluster.start(1)
    cluster.start(2)
    i = good.index("--cluster-secret-file")
    cluster.args = [*good[:i], "--cluster-secret-file", str(wrong), *good[i + 2 :]]
    cluster.start(3)
    cluster.args = good
    cluster.wait_ready([1, 2])
    with cluster.client(1) as c:
        c.register("t")
        deadline = time.monotonic() + 30
        while True:  # the first segment may go to node 3, until its lease is seen to lapse
            try:
                c.put("t", "fine")
                break
            except DefiniteError as exc:
                assert time.monotonic() < deadline, exc
                time.sleep(0.5)
    time.sleep(3)
    with cluster.client(3, timeout=5) as c:
        metrics = c.metrics()
    # Its Raft messages do not decrypt under the others' key: it never hears a leader.
    assert metrics["current_leader"] is None and not metrics["walrus"]["lease_holds"]
    # The others serve without it (segments it was given are taken over once it stays silent;
    # what it would have held stays unreadable until it is back, as for any dead node).
    with cluster.client(2) as c:
        c.register("u")
        c.put("u", "served")
        assert c.get("u") == b"served"
