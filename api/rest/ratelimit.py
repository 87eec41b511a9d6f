"""Per-key limits on creating runs, counted in Redis in one-minute windows.

When Redis cannot be reached the request is let through (and counted in
`mpt_rate_limit_unavailable_total`, and /health answers 503 naming Redis): renders still
queue behind the `cpu` pool's concurrency limit, so an outage of the limiter never turns
into an outage of the service.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
WINDOW_S = 60


async def retry_after(redis: Redis, key_id: str, limit: int) -> int | None:
    """Seconds to wait when `key_id` is over its limit; None when the request may go ahead.

    Raises RedisError when Redis does not answer.
    """
    now = time.time()
    window = int(now // WINDOW_S)
    counter = f"mpt:rate:{key_id}:{window}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(counter)
        pipe.expire(counter, WINDOW_S + 1)
        count, _ = await pipe.execute()
    if count <= limit:
        return None
    return max(1, int((window + 1) * WINDOW_S - now + 0.999))


__all__ = ["RedisError", "retry_after", "WINDOW_S"]
