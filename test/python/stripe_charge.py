"""stripe-python 5.0 with its own retries: stripe.Charge.create through writeguard.

stripe-python puts a uuid4 Idempotency-Key on every POST and keeps it for its own retries, which it
makes (max_network_retries) on timeouts and connection errors, 409 and 5xx, unless the answer says
Stripe-Should-Retry: false.

Usage: stripe_charge.py WRITEGUARD_URL TIMEOUT_SECONDS
Prints the charge, and the key stripe-python sent on each of its attempts.
"""
import sys

import stripe
from stripe.http_client import RequestsClient

from wg_report import answer, emit

WRITEGUARD, TIMEOUT = sys.argv[1], float(sys.argv[2])
sent_keys = []


class KeyRecorder(RequestsClient):
    """The test's window on stripe-python: the Idempotency-Key of each attempt it sends."""

    def request(self, method, url, headers, post_data=None):
        sent_keys.append(headers.get('Idempotency-Key'))
        return super().request(method, url, headers, post_data)


# --- the snippet ---
stripe.api_key = 'sk_test_123'
stripe.api_base = WRITEGUARD  # the Stripe upstream's listener (config/stripe.yaml)
stripe.max_network_retries = 2
stripe.default_http_client = KeyRecorder(timeout=TIMEOUT)  # RequestsClient(timeout=…) in an agent
charge = stripe.Charge.create(amount=2000, currency='usd', source='tok_visa')
# --- end ---

last = charge.last_response
emit({
    'id': charge.id,
    'amount': charge.amount,
    'sent_keys': sent_keys,
    'final': answer(last.code, last.headers, last.body),
})
