"""The counter application's own page, ``/local/<app>/index.html`` (its ConfigurationPage).

A small page behind the device's Digest authentication (viewer or above) showing what the
device is and counts now; a script refreshes the figures with the credentials the browser
already holds. The P8815-2's page (``/local/a3dpc/``) reads ``/a3dpc/api/occupancy``; the
older model's (``/local/stereo/``) reads its stereo API's ``counts.json`` and ``fps.json``.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from simulator.api.a3dpc import local_iso
from simulator.api.common import device_of, requires
from simulator.api.stereo import counts_doc, fps_doc
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

_STEREO_SCRIPT = r"""
(function () {
  var tin = document.getElementById("total-in"), tout = document.getElementById("total-out"),
      at = document.getElementById("at"), fps = document.getElementById("fps");
  function get(url, show) {
    fetch(url, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) show(d); }).catch(function () {});
  }
  function poll() {
    get("/stereo/people-counter/counts.json", function (d) {
      tin.textContent = d.in; tout.textContent = d.out;
      at.textContent = d.timestamp.replace(
        /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)$/, "$1-$2-$3 $4:$5:$6");
    });
    get("/stereo/fps.json", function (d) { fps.textContent = d.fps; });
  }
  setInterval(poll, 5000);
})();
"""


def _document(device: Device, now_html: str, rows: list[tuple[str, str]], script: str) -> str:
    """The page around its "Now" section: the application's name, the "About" list."""
    ident = identity(device.cfg)
    info = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    title = escape(f"{ident.app_nice_name} - {ident.serial}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{escape(ident.app_nice_name)}</h1></header><main>"
        f'<section aria-labelledby="now"><h2 id="now">Now</h2>{now_html}</section>'
        f'<section aria-labelledby="about"><h2 id="about">About</h2><dl>{info}</dl></section>'
        f"</main><script>{script}</script></body></html>\n"
    )


def _about(device: Device, name: str, now: float) -> list[tuple[str, str]]:
    """What both models' pages say the device is, and whether it counts."""
    ident = identity(device.cfg)
    status = "counting" if not device.is_door_closed(now) else "door closed: not counting"
    return [
        ("Device name", name),
        ("Product", ident.prod_full_name),
        ("Serial number", ident.serial),
        ("Firmware", ident.version),
        ("Application", f"{ident.app_nice_name} {ident.app_version}"),
        ("Status", status),
    ]


def page(device: Device) -> str:
    """The P8815-2's page, with its values now."""
    now = device.clock.now()
    r = device.realtime(now)
    rows = _about(device, device.cfg.display_name, now)
    rows.append(("Occupancy estimation", "on" if device.cfg.occupancy.estimation else "off"))
    figures = (
        f'<p>Occupancy <span class="big" id="occupancy">{r.occupancy}</span></p>'
        f'<p>In today <strong id="total-in">{r.total_in}</strong>, '
        f'out today <strong id="total-out">{r.total_out}</strong> '
        f'(at <time id="at">{escape(local_iso(device, r.at))}</time>)</p>'
    )
    return _document(device, figures, rows, _SCRIPT)


def stereo_stamp(timestamp: str) -> str:
    """``counts.json``'s ``YYYYMMDDhhmmss`` as ``YYYY-MM-DD hh:mm:ss`` (as the script shows it)."""
    t = timestamp
    return f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:14]}"


def stereo_page(device: Device) -> str:
    """The older model's page, with the values its stereo API gives now."""
    now = device.clock.now()
    counts, fps = counts_doc(device, now), fps_doc(device, now)
    figures = (
        f'<p>In today <span class="big" id="total-in">{counts["in"]}</span></p>'
        f'<p>Out today <strong id="total-out">{counts["out"]}</strong> '
        f'(at <time id="at">{escape(stereo_stamp(counts["timestamp"]))}</time>)</p>'
        f'<p>Frame rate <strong id="fps">{fps["fps"]}</strong> fps</p>'
    )
    return _document(device, figures, _about(device, counts["name"], now), _STEREO_SCRIPT)


@routes.get("/local/a3dpc/index.html")
@requires("viewer")
async def local_page(request: web.Request) -> web.Response:
    """The application's page: identity, counting status and live occupancy."""
    return web.Response(text=page(device_of(request)), content_type="text/html")


@routes.get("/local/stereo/index.html")
@requires("viewer")
async def local_stereo_page(request: web.Request) -> web.Response:
    """The older model's application page: identity, counting status, today's counts, fps."""
    return web.Response(text=stereo_page(device_of(request)), content_type="text/html")
