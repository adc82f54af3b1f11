"""httpx with an Idempotency-Key: the agent's loop retries resets, timeouts and 5xx with that key.

httpx's HTTPTransport(retries=N) retries only failures to connect, never a request that was sent,
so a reset or a read timeout after sending reaches the caller: the loop below is what agents write.

Usage: httpx_keyed_retry.py WRITEGUARD_URL KEY TIMEOUT_SECONDS ATTEMPTS
Prints every answer (or exception) in order, and the final one.
"""
import sys
import time

import httpx

from wg_report import answer, emit, failure

WRITEGUARD, KEY = sys.argv[1], sys.argv[2]
TIMEOUT, ATTEMPTS = float(sys.argv[3]), int(sys.argv[4])
seen = []

# --- the snippet ---
client = httpx.Client(
    base_url=WRITEGUARD, timeout=TIMEOUT, transport=httpx.HTTPTransport(retries=2)
)


def pay(payment, key, attempts):
    """One payment: the same key and body on every attempt, so a retry can never pay twice."""
    for attempt in range(1, attempts + 1):
        try:
            resp = client.post('/v1/payments', json=payment, headers={'Idempotency-Key': key})
        except httpx.TransportError as exc:  # reset or timeout: the key makes a retry safe
            seen.append(failure(exc))
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
            continue
        seen.append(answer(resp.status_code, resp.headers, resp.content))
        retry = resp.status_code >= 500 or resp.headers.get('x-should-retry') == 'true'
        if not retry or attempt == attempts:
            return resp
        time.sleep(int(resp.headers.get('retry-after-ms', 200 * attempt)) / 1000)
# --- end ---


try:
    final = pay({'amount': 2000, 'currency': 'usd', 'order': KEY}, KEY, ATTEMPTS)
    emit({'seen': seen, 'final': answer(final.status_code, final.headers, final.content)})
except httpx.TransportError as exc:
    emit({'seen': seen, 'final': failure(exc)})
