"""The directory's runtime tests use the asyncio suite's fixtures: each async test runs on
uvloop and on the stdlib loop, and fails if it leaks a task, a socket, a thread or a process."""

from ..aio.conftest import *  # noqa: F403  (loop parametrisation, leak checks, echo)
from ..aio.conftest import no_leaked_resources, no_leaked_tasks  # noqa: F401
