"""RabbitMQ's client without a broker: which aiormq errors prove a publish was not stored or a
get handed nothing out, and the configuration a node is started with."""

from pathlib import Path

import aiormq.exceptions as amqp
import pytest
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp.header import ContentHeader

from harness.clients.rabbitmq import at_least_once, get_outcome, publish_outcome
from harness.systems.base import Member
from harness.systems.rabbitmq import Rabbit, node_name
from harness.tools import missing_reason
from walrus.config import Address

RETURN = spec.Basic.Return(312, "NO_ROUTE", "", "t0")
RETURNED = amqp.PublishError(
    DeliveredMessage(delivery=RETURN, header=ContentHeader(), body=b"", channel=None),  # type: ignore[arg-type]
    RETURN,
)
NACKED = amqp.DeliveryError(None, spec.Basic.Nack(1))


@pytest.mark.parametrize(
    ("exc", "queue_type", "outcome"),
    [
        (RETURNED, "quorum", "fail"),
        (RETURNED, "mirrored", "fail"),
        (amqp.ChannelInvalidStateError("closed"), "quorum", "fail"),
        (NACKED, "quorum", "fail"),
        (NACKED, "mirrored", "info"),
        (amqp.ConnectionClosed(320, "CONNECTION_FORCED"), "quorum", "info"),
        (TimeoutError(), "mirrored", "info"),
    ],
)
def test_only_what_proves_nothing_was_stored_fails_a_publish(exc, queue_type, outcome):
    assert publish_outcome(exc, queue_type) == outcome


def test_a_get_is_definite_only_when_nothing_can_have_been_handed_out():
    assert get_outcome(amqp.ChannelInvalidStateError("closed")).type == "fail"
    gone = get_outcome(amqp.ChannelNotFoundEntity("NOT_FOUND - no queue 't0' in vhost '/'"))
    assert (gone.type, gone.value) == ("ok", None), "a queue that does not exist is empty"
    home_down = "NOT_FOUND - home node 'rabbit1@localhost' of durable queue 't0' is down"
    assert get_outcome(amqp.ChannelNotFoundEntity(home_down)).type == "fail"
    assert get_outcome(TimeoutError()).type == "info"
    assert get_outcome(amqp.ConnectionClosed(320, "CONNECTION_FORCED")).type == "info"


def test_the_promise_is_at_least_once_with_no_ack_ever_known_final():
    promise = at_least_once("quorum")
    assert (promise.once, promise.order, promise.acked_final) == (False, "none", False)
    assert promise.redelivery_s is not None and promise.redelivery_s > 0


@pytest.mark.skipif(missing_reason("erlc") is not None, reason=str(missing_reason("erlc")))
def test_a_node_reaches_its_peers_through_the_routes_it_is_given(tmp_path: Path):
    members = {
        n: Member(
            n,
            Address("127.0.0.1", 5670 + n),
            {"dist": Address("127.0.0.1", 25670 + n), "epmd": Address("127.0.0.1", 4360 + n)},
        )
        for n in (1, 2, 3)
    }
    routes = {2: {"dist": Address("127.0.0.1", 31012)}, 3: {"dist": Address("127.0.0.1", 31013)}}
    cmd = Rabbit("mirrored", "autoheal").local_command(members[1], members, tmp_path, routes)
    assert cmd.env["HARNESS_DIST_ROUTES"] == (
        f"{node_name(2)}=127.0.0.1:31012,{node_name(3)}=127.0.0.1:31013"
    )
    assert cmd.env["RABBITMQ_DIST_PORT"] == "25671" and cmd.env["ERL_EPMD_PORT"] == "4361"
    assert "-epmd_module harness_epmd" in cmd.env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    conf = (tmp_path / "rabbitmq.conf").read_text()
    assert "cluster_partition_handling = autoheal" in conf
    assert all(f"= {node_name(n)}" in conf for n in (1, 2, 3))
    assert (tmp_path / "home" / ".erlang.cookie").stat().st_mode & 0o777 == 0o400


@pytest.mark.skipif(
    missing_reason("erlc") or missing_reason("libfaketime"),
    reason=str(missing_reason("erlc") or missing_reason("libfaketime")),
)
def test_the_clock_nemesis_preloads_libfaketime_and_lets_erlang_time_warp(tmp_path: Path):
    member = Member(
        1,
        Address("127.0.0.1", 5671),
        {"dist": Address("127.0.0.1", 25671), "epmd": Address("127.0.0.1", 4361)},
    )
    system = Rabbit().for_faults(["clock"])
    cmd = system.local_command(member, {1: member}, tmp_path, {})
    assert "libfaketime" in cmd.env["LD_PRELOAD"]
    assert cmd.env["FAKETIME_TIMESTAMP_FILE"].startswith(str(tmp_path))
    assert "+C multi_time_warp" in cmd.env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert system.clock_control(2.5, 1.1) == ("faketime.rc", b"+2.500000 x1.100000\n")
    assert "LD_PRELOAD" not in Rabbit().local_command(member, {1: member}, tmp_path, {}).env
