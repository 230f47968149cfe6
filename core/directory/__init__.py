"""The directory service (DESIGN §6): names mapped to servers' signed records, so a client's
first packet to a server it knows only by name can carry data (one round trip for the lookup,
none once the record is cached).

Sans I/O: the protocol (``protocol``), storage (``store``) and client configuration (``config``).
The servers and clients that speak it over MinimaLT are in ``minimalt.aio.directory``.
"""

from .config import DirectoryConfig, load_directory_config
from .errors import (
    DirectoryConfigError,
    DirectoryError,
    DirectoryUnavailable,
    NameNotFound,
    RegistrationRefused,
)
from .protocol import SERVICE, DirectoryService, RecordCache, normalize_name
from .store import MemoryStore, PutResult, SQLiteStore, Store, open_store

__all__ = [
    "SERVICE",
    "DirectoryConfig",
    "DirectoryConfigError",
    "DirectoryError",
    "DirectoryService",
    "DirectoryUnavailable",
    "MemoryStore",
    "NameNotFound",
    "PutResult",
    "RecordCache",
    "RegistrationRefused",
    "SQLiteStore",
    "Store",
    "load_directory_config",
    "normalize_name",
    "open_store",
]
