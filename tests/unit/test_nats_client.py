"""NATS JetStream's client and configuration, without a server: which nats-py errors prove a
publish was not stored, what an ack subject says, and the routes a node is given."""

from pathlib import Path

import nats.errors
import nats.js.errors
import pytest

from harness.clients.nats import _delivered, _get_outcome, publish_outcome
from harness.systems.base import Member
from harness.systems.nats import DEAD_ROUTE, Nats
from walrus.config import Address


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (nats.js.errors.NoStreamResponseError(), "fail"),
        (nats.errors.ConnectionClosedError(), "fail"),
        (nats.errors.OutboundBufferLimitError(), "fail"),
        (nats.js.errors.ServiceUnavailableError(code=503, err_code=10077), "fail"),
        (nats.js.errors.ServiceUnavailableError(code=503, err_code=10008), "fail"),
        (nats.js.errors.ServiceUnavailableError(code=503, description="raft: timeout"), "info"),
        (nats.js.errors.APIError(code=500, err_code=10999), "info"),
        (nats.errors.TimeoutError(), "info"),
        (RuntimeError("anything else"), "info"),
    ],
)
def test_only_errors_that_prove_nothing_was_stored_fail_a_publish(exc, outcome):
    assert publish_outcome(exc) == outcome


def test_a_get_fails_only_when_no_message_can_have_been_handed_out():
    assert _get_outcome(nats.errors.NoRespondersError()).type == "fail"
    assert _get_outcome(nats.errors.ConnectionClosedError()).type == "fail"
    assert _get_outcome(nats.errors.TimeoutError()).type == "info"


def test_the_ack_subject_gives_the_stream_sequence_and_the_deliveries():
    assert _delivered("$JS.ACK.t0.harness.2.17.9.1733580000000000000.4") == {
        "seq": 17,
        "deliveries": 2,
    }
    assert _delivered("_INBOX.x") == {}


def test_a_node_routes_through_the_proxies_and_advertises_a_dead_route(tmp_path: Path):
    member = Member(
        2,
        Address("127.0.0.1", 10002),
        {"route": Address("127.0.0.1", 10102), "monitor": Address("127.0.0.1", 10202)},
    )
    proxies = [Address("127.0.0.1", 40001), Address("127.0.0.1", 40003)]
    conf = Nats().config(member, tmp_path, proxies)
    assert "server_name: n2\n" in conf and "listen: 127.0.0.1:10002\n" in conf
    assert "http: 127.0.0.1:10202\n" in conf and "listen: 127.0.0.1:10102\n" in conf
    assert f'advertise: "{DEAD_ROUTE}"' in conf and "no_advertise: true" in conf
    assert '"nats-route://127.0.0.1:40001", "nats-route://127.0.0.1:40003"' in conf
    assert str(tmp_path / "jetstream") in conf
