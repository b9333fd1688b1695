"""The counter application's own page, ``/local/a3dpc/index.html`` (its ConfigurationPage).

A small page behind the device's Digest authentication (viewer or above) showing what the
device is and counts now; a script refreshes the occupancy from ``/a3dpc/api/occupancy``
with the credentials the browser already holds.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from simulator.api.a3dpc import local_iso
from simulator.api.common import device_of, requires
from simulator.device import Device
from simulator.identity import identity

routes = web.RouteTableDef()

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1d;background:#f4f5f6}
header{background:#ffcc33;padding:.8rem 1.2rem}h1{font-size:1.2rem;margin:0}
main{padding:1rem 1.2rem;max-width:40rem}dl{display:grid;grid-template-columns:auto 1fr;
gap:.3rem 1rem}dt{font-weight:600}dd{margin:0}.big{font-size:2.4rem;font-weight:700}
section{background:#fff;border-radius:6px;padding:.8rem 1rem;margin:0 0 1rem}
"""

_SCRIPT = """
(function () {
  var out = document.getElementById("occupancy"), tin = document.getElementById("total-in"),
      tout = document.getElementById("total-out"), at = document.getElementById("at");
  function poll() {
    fetch("/a3dpc/api/occupancy", {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        out.textContent = d.occupancy; tin.textContent = d.total_in;
        tout.textContent = d.total_out; at.textContent = d.timestamp;
      }).catch(function () {});
  }
  setInterval(poll, 5000);
})();
"""


def page(device: Device) -> str:
    """The page of a device, with its values now."""
    ident = identity(device.cfg)
    now = device.clock.now()
    r = device.realtime(now)
    status = "counting" if not device.is_door_closed(now) else "door closed: not counting"
    rows = [
        ("Device name", device.cfg.display_name),
        ("Product", ident.prod_full_name),
        ("Serial number", ident.serial),
        ("Firmware", ident.version),
        ("Application", f"{ident.app_nice_name} {ident.app_version}"),
        ("Status", status),
        ("Occupancy estimation", "on" if device.cfg.occupancy.estimation else "off"),
    ]
    info = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    title = escape(f"{ident.app_nice_name} - {ident.serial}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{escape(ident.app_nice_name)}</h1></header><main>"
        f'<section aria-labelledby="now"><h2 id="now">Now</h2>'
        f'<p>Occupancy <span class="big" id="occupancy">{r.occupancy}</span></p>'
        f'<p>In today <strong id="total-in">{r.total_in}</strong>, '
        f'out today <strong id="total-out">{r.total_out}</strong> '
        f'(at <time id="at">{escape(local_iso(device, r.at))}</time>)</p></section>'
        f'<section aria-labelledby="about"><h2 id="about">About</h2><dl>{info}</dl></section>'
        f"</main><script>{_SCRIPT}</script></body></html>\n"
    )


@routes.get("/local/a3dpc/index.html")
@requires("viewer")
async def local_page(request: web.Request) -> web.Response:
    """The application's page: identity, counting status and live occupancy."""
    return web.Response(text=page(device_of(request)), content_type="text/html")
