"""requests + urllib3's Retry, as agents mount it: a keyless POST retried on the statuses given.

Usage: requests_urllib3_retry.py WRITEGUARD_URL STATUS[,STATUS...]
Prints what the client finally got and the statuses urllib3 retried on.
"""
import sys

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from wg_report import answer, emit

WRITEGUARD = sys.argv[1]
FORCELIST = [int(s) for s in sys.argv[2].split(',')]

# --- the snippet ---
session = requests.Session()
retries = Retry(total=3, status_forcelist=FORCELIST, allowed_methods=None,  # None: POST too
                backoff_factor=0.1, raise_on_status=False)
session.mount('http://', HTTPAdapter(max_retries=retries))
payment = {'amount': 2000, 'currency': 'usd', 'order': 'R-1'}
resp = session.post(f'{WRITEGUARD}/v1/payments', json=payment, timeout=10)
# --- end ---

# urllib3 keeps the Retry it ended with on the response: one history entry per retry it made.
retried_on = [h.status for h in resp.raw.retries.history]
emit({'final': answer(resp.status_code, resp.headers, resp.content), 'retried_on': retried_on})
