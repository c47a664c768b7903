"""Reading the kernel's TCP counters out of a node container's /proc/net."""

from harness.cluster.docker import parse_tcp_counters

SNMP = """Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 120
Tcp: RtoAlgorithm RtoMin InSegs OutSegs RetransSegs
Tcp: 1 200 5310 5200 7
Udp: InDatagrams NoPorts
Udp: 3 0
TcpExt: SyncookiesSent TCPDSACKOldSent TCPOFOQueue TCPLossProbes
TcpExt: 0 41 9 2
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
"""


def test_the_counters_that_show_packet_faults_are_read_by_name():
    assert parse_tcp_counters(SNMP) == {
        "segments_in": 5310,
        "retransmitted": 7,
        "duplicates_in": 41,
        "out_of_order_in": 9,
        "loss_probes": 2,
    }


def test_unpaired_or_empty_lines_are_skipped():
    assert parse_tcp_counters("") == {}
    assert parse_tcp_counters("Tcp: InSegs\n\nTcp: 4\n") == {}
