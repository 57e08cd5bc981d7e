"""Throttling credential guessing per client address (RELIABILITY.md S12).

The decision is pure (a `Record` of one address's recent failures, the `Policy`, `now` in
seconds → allowed, or how long to wait); `FailureLedger` keeps one bounded record per address
and reads the time from the injected `Clock`. No Flask here: `libs.platform.auth_guard` wires
it into every HTTP app.

What a success does (why it resets nothing): OWASP's advice to reset the failure counter on a
successful login is for a counter per *account*, where the success proves the owner is back.
This counter is per *address*, and a success with one key says nothing about guesses at others:
were it to reset the count (or lift a lockout), whoever holds one valid key could interleave it
with unlimited guesses. So failures only age out of the window, and a locked address is refused
before its credentials are checked (a key that worked during a lockout would be an oracle).
Like osTicket's "N failed attempts before an M-minute lock-out", the lockout is fixed per step,
and doubles for each further lockout of the same address (OWASP's exponential lockout).
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from libs.events.clock import Clock


@dataclass(frozen=True)
class Policy:
    limit: int  # failures within `window_s` that lock the address out; 0 = never lock
    window_s: float
    lockout_s: float  # the first lockout; each further one doubles, up to `max_lockout_s`
    max_lockout_s: float


@dataclass(frozen=True)
class Record:
    """What one address did lately: times (s) of its failures in the window, oldest first."""

    failures: tuple[float, ...] = ()
    locked_until: float = 0.0
    lockouts: int = 0  # how many times it was locked out (the backoff's exponent)


def retry_after(record: Record | None, now: float) -> int | None:
    """None when the address may try; else the whole seconds until its lockout ends."""
    if record is None or now >= record.locked_until:
        return None
    return max(1, math.ceil(record.locked_until - now))


def after_failure(record: Record | None, now: float, policy: Policy) -> Record:
    """The address's record once one more failure happened at `now`; the limit-th failure
    within the window locks it out for lockout_s * 2**(lockouts so far), at most max_lockout_s."""
    record = record or Record()
    recent = (*(t for t in record.failures if now - t < policy.window_s), now)
    if policy.limit <= 0 or len(recent) < policy.limit:
        return replace(record, failures=recent)
    lockout = min(policy.lockout_s * 2 ** min(record.lockouts, 32), policy.max_lockout_s)
    return Record(failures=(), locked_until=now + lockout, lockouts=record.lockouts + 1)


def forgotten(record: Record, now: float, policy: Policy) -> bool:
    """True once nothing in the record matters any more: no failure left in the window and the
    last lockout over for max_lockout_s (so the backoff starts again from lockout_s)."""
    quiet = all(now - t >= policy.window_s for t in record.failures)
    return quiet and now >= record.locked_until + policy.max_lockout_s


def client_key(address: str | None) -> str:
    """Whom a failure is counted against: the IPv4 address, or the IPv6 /64 (one subscriber
    is usually handed a whole /64; counting single IPv6 addresses would let it rotate)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"  # one bucket for whatever a trusted proxy sent that is no address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class FailureLedger:
    """One process's records, at most `capacity` addresses (the least recently failing evicted).

    Memory per process is enough here: a guess costs the attacker a request to *this* process,
    and each process refuses after `limit` of them, so a deployment of N processes (gunicorn
    workers, replicas) lets through N times as many guesses as one — against 160-bit keys still
    hopeless — while the log and metric show every one. A multi-replica deployment that wants
    one count per address keeps the records in a shared store (Redis INCR with a TTL, or a
    PostgreSQL upsert) or rate-limits failed requests at its ingress. The cap bounds memory when
    many addresses fail; evicting one lets it try `limit` more times, no more.
    """

    def __init__(self, policy: Policy, clock: Clock, capacity: int = 10_000) -> None:
        self.policy = policy
        self._clock = clock
        self._capacity = max(1, capacity)
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def retry_after(self, address: str | None) -> int | None:
        with self._lock:
            return retry_after(self._records.get(client_key(address)), self._now())

    def failed(self, address: str | None) -> int | None:
        """Count one failure from `address`; the seconds of the lockout it started, if it did."""
        key, now = client_key(address), self._now()
        with self._lock:
            record = after_failure(self._records.pop(key, None), now, self.policy)
            self._records[key] = record  # now the most recent
            self._evict(now)
        tripped = not record.failures  # the failure that locks clears the window
        return retry_after(record, now) if tripped else None

    def __len__(self) -> int:
        return len(self._records)

    def _evict(self, now: float) -> None:
        oldest = next(iter(self._records))
        if forgotten(self._records[oldest], now, self.policy):
            del self._records[oldest]  # one forgotten record dropped per failure keeps it tidy
        while len(self._records) > self._capacity:
            self._records.popitem(last=False)
