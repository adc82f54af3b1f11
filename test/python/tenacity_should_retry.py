"""tenacity around a keyed requests POST, retrying only when writeguard says x-should-retry: true.

Usage: tenacity_should_retry.py WRITEGUARD_URL KEY [twin]
With `twin`, a first call runs in a thread and a second call with the same key starts when the
test writes a line on stdin (once the first has reached the upstream).
Prints, per call, every answer writeguard gave it, in order.
"""
import select
import sys
import threading

import requests
import tenacity

from wg_report import answer, emit

WRITEGUARD, KEY = sys.argv[1], sys.argv[2]
TWIN = sys.argv[3:] == ['twin']


# --- the snippet ---
def wait_retry_after_ms(state):
    """tenacity's wait: writeguard's retry-after-ms (sent with every x-should-retry: true)."""
    return int(state.outcome.result().headers.get('retry-after-ms', '500')) / 1000


@tenacity.retry(
    retry=tenacity.retry_if_result(lambda resp: resp.headers.get('x-should-retry') == 'true'),
    wait=wait_retry_after_ms,
    stop=tenacity.stop_after_attempt(5) | tenacity.stop_after_delay(10),
    retry_error_callback=lambda state: state.outcome.result(),  # out of attempts: the last answer
)
def pay(payment, key, seen):
    resp = requests.post(f'{WRITEGUARD}/v1/payments', json=payment,
                         headers={'Idempotency-Key': key}, timeout=30)
    seen.append(answer(resp.status_code, resp.headers, resp.content))
    return resp
# --- end ---


PAYMENT = {'amount': 2000, 'currency': 'usd', 'order': KEY}
calls = {'first': [], 'twin': []}
if TWIN:
    first = threading.Thread(target=pay, args=(PAYMENT, KEY, calls['first']), daemon=True)
    first.start()
    ready, _, _ = select.select([sys.stdin], [], [], 10)  # bounded: the test says "go" within 10 s
    if not ready:
        sys.exit('the test never said go')
    sys.stdin.readline()
    pay(PAYMENT, KEY, calls['twin'])
    first.join(30)
else:
    pay(PAYMENT, KEY, calls['first'])
emit(calls)
