from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from pysyncobj.config import FAIL_REASON as FAIL_REASON
from pysyncobj.config import SyncObjConf as SyncObjConf
from pysyncobj.journal import Journal
from pysyncobj.node import Node

_F = TypeVar("_F", bound=Callable[..., object])

monotonicTime: Callable[[], float]
createJournal: Callable[[str | None], Journal]

class SyncObjException(Exception):
    errorCode: str
    def __init__(self, errorCode: str, *args: object) -> None: ...

class SyncObj:
    _methodToID: dict[str | tuple[int, str], int]
    def __init__(
        self,
        selfNode: str | Node | None,
        otherNodes: Iterable[str | Node],
        conf: SyncObjConf | None = None,
        consumers: list[object] | None = None,
        nodeClass: type[Node] = ...,
        transport: object = None,
        transportClass: type = ...,
    ) -> None: ...
    def doTick(self, timeToWait: float = 0.0) -> None: ...
    def addOnTickCallback(self, callback: Callable[[], None]) -> None: ...
    def getStatus(self) -> dict[str, Any]: ...
    def isNodeConnected(self, node: Node) -> bool: ...
    @property
    def otherNodes(self) -> set[Node]: ...
    def destroy(self) -> None: ...
    def _isLeader(self) -> bool: ...
    def _getLeader(self) -> Node | None: ...
    def _doDestroy(self) -> None: ...

    # Private members, by their mangled names: only those walrus.raft reaches.
    _SyncObj__raftLog: Journal
    _SyncObj__raftCurrentTerm: int
    _SyncObj__raftCommitIndex: int
    _SyncObj__raftLastApplied: int
    _SyncObj__raftElectionDeadline: float
    _SyncObj__raftNextIndex: dict[Node, int]
    _SyncObj__recvTransmission: Any  # '' until a transmission's first part, then bytes
    def _SyncObj__onMessageReceived(self, node: Node, message: dict[str, Any]) -> None: ...
    def _SyncObj__getEntries(
        self, fromIDx: int, count: int | None = None, maxSizeBytes: int | None = None
    ) -> list[tuple[bytes, int, int]]: ...
    def _SyncObj__getCurrentLogIndex(self) -> int: ...
    def _SyncObj__deleteEntriesFrom(self, fromIDx: int) -> None: ...
    def _SyncObj__sendNextNodeIdx(
        self,
        node: Node,
        reset: bool = False,
        nextNodeIdx: int | None = None,
        success: bool = False,
    ) -> None: ...
    def _SyncObj__doApplyCommand(self, command: bytes) -> object: ...
    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None: ...

# A replicated method takes its own arguments and pysyncobj's callback, sync and timeout
# keywords; it returns nothing, or the result when called with sync=True.
@overload
def replicated(func: _F, /) -> Callable[..., object]: ...
@overload
def replicated(*, ver: int = 0) -> Callable[[_F], Callable[..., object]]: ...
