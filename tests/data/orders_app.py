"""A tiny shop backend for tests/real_uwsgi.rs, served by a real uWSGI.

POST /api/v1/orders/        answers the status given in the X-Test-Status header
                            (201 by default); 500 is a real unhandled exception,
                            so uWSGI itself logs the traceback and answers 500.
GET  /api/v1/catalog/       200 with a small JSON body.
GET  /api/v1/export/        streams a large body slowly (up to ~20 s), so a client
                            that reads a little and closes makes uWSGI fail a write
                            and log a client-disconnect line.
anything else               404.
"""

import json
import time

REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def respond(start_response, status, payload):
    body = json.dumps(payload).encode()
    start_response(
        "%d %s" % (status, REASONS.get(status, "Status")),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def application(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    if method == "POST" and path == "/api/v1/orders/":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        status = int(environ.get("HTTP_X_TEST_STATUS", "201"))
        if status == 500:
            raise RuntimeError("test order backend failure: the database is gone")
        if status == 201:
            return respond(start_response, 201, {"order_id": 1001})
        if status == 429:
            return respond(start_response, 429, {"error": "too many orders from this address"})
        return respond(start_response, status, {"error": "delivery floor must be >= 0", "field": "floor"})
    if method == "GET" and path == "/api/v1/catalog/":
        return respond(start_response, 200, {"items": [{"name": "kettle", "price": 1990}]})
    if method == "GET" and path == "/api/v1/export/":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return slow_body()
    return respond(start_response, 404, {"error": "not found"})


def slow_body():
    chunk = b"x" * 65536
    deadline = time.time() + 20
    while time.time() < deadline:
        yield chunk
        time.sleep(0.02)
