"""HTTPS on the web side: the CA's PEM at ``/sim/v1/ca.pem``, and ``https_only`` redirects.

A device with ``https_only`` answers a request over plain HTTP with a redirect to the same
path on its HTTPS address (the control plane under ``/sim/`` keeps answering over both).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from aiohttp import web

from simulator.api import apache

routes = web.RouteTableDef()


@dataclass
class HttpsInfo:
    """The run's CA (PEM; None: HTTPS is off) and the HTTP addresses that redirect to HTTPS."""

    ca_pem: bytes | None = None
    #: The bound HTTP address of an ``https_only`` device -> its bound HTTPS address.
    redirects: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)


HTTPS = web.AppKey("https", HttpsInfo)


#: Apache's answer to a request that ``Redirect`` sends elsewhere (its default: 302).
@routes.get("/sim/v1/ca.pem")
async def ca_pem(request: web.Request) -> web.Response:
    """The CA certificate that issued the devices' HTTPS certificates (PEM); 404 if none."""
    pem = request.app[HTTPS].ca_pem
    if pem is None:
        return web.json_response(
            {"error": {"message": "HTTPS is off in this run: no CA"}}, status=404
        )
    return web.Response(
        body=pem,
        content_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="p8815-sim-ca.pem"'},
    )


def redirect_target(request: web.Request, bound: tuple[str, int]) -> str:
    """The HTTPS URL of the request's path: the bound HTTPS address (its host if a wildcard)."""
    host = bound[0]
    if ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified:
        host = request.url.host or host
    netloc = f"[{host}]" if ":" in host else host
    return f"https://{netloc}:{bound[1]}{request.raw_path}"


def redirect(request: web.Request, sockname: object) -> web.Response | None:
    """The redirect of a request over HTTP to an ``https_only`` device (None: not one).

    ``sockname`` is the local address the request arrived on; the device middleware asks
    before credentials, and journals and counts the redirect like any answer.
    """
    redirects = request.app[HTTPS].redirects
    bound = redirects.get(sockname[:2]) if redirects and isinstance(sockname, tuple) else None
    if bound is None:
        return None
    url = redirect_target(request, bound)
    return apache.error(302, request.method, {"Location": url}, url=url)
