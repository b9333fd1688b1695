"""The device's web server as clients see it: Apache's ``Server`` header and error pages.

The bodies are Apache httpd's built-in error documents (``ap_send_error_response``), sent
as ``text/html; charset=iso-8859-1`` without a server signature; JSON answers carry one
Content-Type whatever produced them.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

from aiohttp import web

SERVER = "Apache"  # ServerTokens Prod: the product, no version
CONTENT_TYPE = "text/html; charset=iso-8859-1"
JSON = "application/json"  # UTF-8 by definition (RFC 8259): no charset parameter

#: status -> (title, the paragraph Apache writes; ``{method}`` is the request's method,
#: ``{url}`` where a redirect sends it)
PAGES: dict[int, tuple[str, str]] = {
    302: ("Found", '<p>The document has moved <a href="{url}">here</a>.</p>\n'),
    400: (
        "Bad Request",
        "<p>Your browser sent a request that this server could not understand.<br />\n</p>\n",
    ),
    401: (
        "Unauthorized",
        "<p>This server could not verify that you\nare authorized to access the document\n"
        "requested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\n"
        "browser doesn't understand how to supply\nthe credentials required.</p>\n",
    ),
    403: ("Forbidden", "<p>You don't have permission to access this resource.</p>\n"),
    404: ("Not Found", "<p>The requested URL was not found on this server.</p>\n"),
    405: (
        "Method Not Allowed",
        "<p>The requested method {method} is not allowed for this URL.</p>\n",
    ),
    408: (
        "Request Timeout",
        "<p>Server timeout waiting for the HTTP request from the client.</p>\n",
    ),
    500: (
        "Internal Server Error",
        "<p>The server encountered an internal error or\nmisconfiguration and was unable to "
        "complete\nyour request.</p>\n<p>Please contact the server administrator at \n "
        "you@example.com to inform them of the time this error occurred,\n and the actions "
        "you performed just before this error.</p>\n<p>More information about this error "
        "may be available\nin the server error log.</p>\n",
    ),
}


@lru_cache(maxsize=64)
def page(status: int, method: str = "GET", url: str = "") -> str:
    """Apache's document for ``status`` (one of :data:`PAGES`)."""
    title, text = PAGES[status]
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
        f"<title>{status} {title}</title>\n</head><body>\n<h1>{title}</h1>\n"
        f"{text.format(method=escape(method), url=escape(url))}</body></html>\n"
    )


def error(
    status: int, method: str = "GET", headers: dict[str, str] | None = None, url: str = ""
) -> web.Response:
    """An answer as Apache sends it (an error, or a redirect to ``url``): its page,
    ISO-8859-1 HTML, the given headers."""
    resp = web.Response(status=status, body=page(status, method, url).encode("latin-1", "replace"))
    resp.headers["Content-Type"] = CONTENT_TYPE
    resp.headers.update(headers or {})
    return resp


async def face(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer names its server as the device's Apache does, and every JSON answer, with
    or without an error, says plain ``application/json`` (``on_response_prepare``)."""
    response.headers["Server"] = SERVER
    if response.headers.get("Content-Type", "").startswith(JSON):
        response.headers["Content-Type"] = JSON
