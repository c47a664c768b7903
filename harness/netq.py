"""A packet delayer on NFQUEUE, for the Docker backend's link delay, jitter and reordering.

This kernel has no ``sch_netem``, but iptables can hand packets to a user-space program
(``-j NFQUEUE``), which decides when each may go on. ``python -m harness.netq --queue N
--delay-ms D --jitter-ms J --reorder P --hold-ms H`` holds every packet of queue N for D ms plus
or minus up to J ms, and a share P of them H ms more, then accepts it — packets whose delays
cross leave out of order, which is how jitter and holding reorder.
It runs on the host, inside a node container's network namespace (``nsenter --net``), so any
node image works, and it speaks to the kernel through Debian's libnetfilter-queue1 with the
ctypes binding below (Debian packages no Python binding). SIGTERM releases every held packet and
exits. The iptables rule should carry ``--queue-bypass``, so packets pass when it is gone (or
not yet there: it prints ``READY`` once it holds the queue).
"""

import argparse
import ctypes
import heapq
import os
import random
import select
import signal
import socket
import sys
import time

NF_ACCEPT = 1
NFQNL_COPY_META = 1
READY = "netq: holding queue"
"""The line netq prints once its queue is bound (packets sent before then pass undelayed)."""
LIBRARY = "libnetfilter_queue.so.1"
"""Debian's libnetfilter-queue1 (``make install`` puts it there)."""


class _PacketHeader(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("packet_id", ctypes.c_uint32),
        ("hw_protocol", ctypes.c_uint16),
        ("hook", ctypes.c_uint8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)


def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(LIBRARY, use_errno=True)
    lib.nfq_open.restype = ctypes.c_void_p
    lib.nfq_close.argtypes = [ctypes.c_void_p]
    lib.nfq_create_queue.restype = ctypes.c_void_p
    lib.nfq_create_queue.argtypes = [ctypes.c_void_p, ctypes.c_uint16, _CALLBACK, ctypes.c_void_p]
    lib.nfq_destroy_queue.argtypes = [ctypes.c_void_p]
    lib.nfq_set_mode.argtypes = [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint32]
    lib.nfq_set_queue_maxlen.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.nfq_fd.argtypes = [ctypes.c_void_p]
    lib.nfq_handle_packet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.nfq_get_msg_packet_hdr.restype = ctypes.POINTER(_PacketHeader)
    lib.nfq_get_msg_packet_hdr.argtypes = [ctypes.c_void_p]
    lib.nfq_set_verdict.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_char_p,
    ]
    return lib


class Delayer:
    """Holds each packet of one queue for its delay, then accepts it."""

    def __init__(
        self, queue: int, delay_s: float, jitter_s: float, reorder: float = 0.0, hold_s: float = 0.0
    ) -> None:
        self.lib = _library()
        self.delay_s, self.jitter_s = delay_s, jitter_s
        self.reorder, self.hold_s = reorder, hold_s
        self.held: list[tuple[float, int, int]] = []
        self._seq = 0
        self._rng = random.Random()
        self.handle = self.lib.nfq_open()
        if not self.handle:
            raise OSError(ctypes.get_errno(), "nfq_open failed")
        self._callback = _CALLBACK(self._on_packet)
        self.queue = self.lib.nfq_create_queue(self.handle, queue, self._callback, None)
        if not self.queue:
            raise OSError(ctypes.get_errno(), f"cannot bind NFQUEUE {queue}")
        self.lib.nfq_set_mode(self.queue, NFQNL_COPY_META, 0)
        self.lib.nfq_set_queue_maxlen(self.queue, 65536)
        self.fd = self.lib.nfq_fd(self.handle)
        sock = socket.socket(fileno=os.dup(self.fd))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.close()

    def _on_packet(self, _qh, _msg, nfa, _data) -> int:
        header = self.lib.nfq_get_msg_packet_hdr(nfa)
        packet_id = socket.ntohl(header.contents.packet_id)
        wait = max(0.0, self.delay_s + self._rng.uniform(-self.jitter_s, self.jitter_s))
        if self.reorder and self._rng.random() < self.reorder:
            wait += self.hold_s
        self._seq += 1
        heapq.heappush(self.held, (time.monotonic() + wait, self._seq, packet_id))
        return 0

    def _release(self, until: float) -> None:
        while self.held and self.held[0][0] <= until:
            _, _, packet_id = heapq.heappop(self.held)
            self.lib.nfq_set_verdict(self.queue, packet_id, NF_ACCEPT, 0, None)

    def run(self, stop: list[bool]) -> None:
        """Until ``stop`` holds a value: read packets, release each when due."""
        buf = ctypes.create_string_buffer(65536)
        while not stop:
            timeout = max(0.0, self.held[0][0] - time.monotonic()) if self.held else 0.5
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if ready:
                try:
                    n = os.readv(self.fd, [memoryview(buf)])
                except OSError:  # ENOBUFS: the kernel dropped some; carry on
                    n = 0
                if n > 0:
                    self.lib.nfq_handle_packet(self.handle, buf, n)
            self._release(time.monotonic())
        self._release(float("inf"))
        self.lib.nfq_destroy_queue(self.queue)
        self.lib.nfq_close(self.handle)


def main(argv: list[str] | None = None) -> int:
    """Delay one queue's packets until SIGTERM; 1 with one line if the queue cannot be bound."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.netq", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0, help="share of packets held back")
    parser.add_argument("--hold-ms", type=float, default=0.0, help="how long they are held")
    args = parser.parse_args(argv)
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    try:
        delayer = Delayer(
            args.queue,
            args.delay_ms / 1000,
            args.jitter_ms / 1000,
            args.reorder,
            args.hold_ms / 1000,
        )
    except OSError as exc:
        print(f"netq: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{READY} {args.queue}", flush=True)
    delayer.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
