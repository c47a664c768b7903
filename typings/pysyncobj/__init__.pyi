"""Types for the part of pysyncobj 0.3.17 (pinned in pyproject.toml) that walrus uses.

pysyncobj ships no types. These stubs declare what the node calls, no more, as the pinned
version defines it; the private members among them are those ``walrus.raft`` reaches, and it
says why.
"""

from pysyncobj.config import FAIL_REASON as FAIL_REASON
from pysyncobj.config import SyncObjConf as SyncObjConf
from pysyncobj.syncobj import SyncObj as SyncObj
from pysyncobj.syncobj import SyncObjException as SyncObjException
from pysyncobj.syncobj import createJournal as createJournal
from pysyncobj.syncobj import replicated as replicated
