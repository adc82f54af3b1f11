"""The one JSON line a test script prints, read by test/integration/python-clients.test.ts."""
import json
import sys


def answer(status, headers, body):
    """What one answer told the client: status, error code, replay and retry headers."""
    code = None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get('error')
        code = parsed.get('code') or (error.get('code') if isinstance(error, dict) else None)
    return {
        'status': status,
        'code': code,
        'replayed': headers.get('idempotent-replayed'),
        'should_retry': headers.get('x-should-retry'),
        'retry_after': headers.get('retry-after'),
        'wg_attempts': headers.get('x-writeguard-attempts'),
        'key': headers.get('idempotency-key'),
    }


def failure(exc):
    """A request that got no answer (reset, timeout): the exception's class names it."""
    return {'error': type(exc).__name__}


def emit(report):
    sys.stdout.write(json.dumps(report) + '\n')
    sys.stdout.flush()
