"""Sends one captured exception to orderwatch through the real sentry-sdk (PyPI),
as a shop's backend does: `python sentry_python.py DSN gzip|br`.

Prints the event id on stdout; exits 1 if the SDK reports a failed send.
"""

import logging
import sys

import sentry_sdk

dsn, algo = sys.argv[1], sys.argv[2]

failures = []


class Watch(logging.Handler):
    def emit(self, record):
        text = record.getMessage()
        if "Unexpected status code" in text or "Internal error" in text:
            failures.append(text)


logging.getLogger("sentry_sdk.errors").addHandler(Watch())
sentry_sdk.init(
    dsn=dsn,
    debug=True,
    default_integrations=False,
    _experiments={"transport_compression_algo": algo},
)
sentry_sdk.set_tag("endpoint", "POST /api/v1/orders/")
sentry_sdk.set_extra("order", {"customer": {"name": "Ирина", "phone": "+7 900 000-00-00"}, "total": 4990})


def add_request(event, hint):
    event["request"] = {
        "method": "POST",
        "url": "https://example-shop.ru/api/v1/orders/",
        "data": {"delivery": {"floor": -1}},
        "headers": {"X-Request-Id": "req-5"},
    }
    return event


with sentry_sdk.new_scope() as scope:
    scope.add_event_processor(add_request)
    try:
        raise ValueError("order failed: delivery.floor must be >= 0")
    except ValueError:
        event_id = sentry_sdk.capture_exception()

sentry_sdk.flush(timeout=10)
print(event_id)
if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
