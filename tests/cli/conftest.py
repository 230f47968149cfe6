"""The CLI tests run real ``python -m minimalt`` processes and must leave none behind."""

from ..aio.leaks import no_leaked_resources  # noqa: F401  (autouse fixture)
