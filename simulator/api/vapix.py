"""VAPIX device discovery, served by every model: what client libraries ask before anything.

- ``/axis-cgi/apidiscovery.cgi`` and ``/axis-cgi/basicdeviceinfo.cgi``: JSON APIs in the
  VAPIX envelope, errors as ``{"error": {"code", "message"}}`` with the codes below;
- ``/axis-cgi/param.cgi?action=list``: ``root.Group.Name=value`` lines, an unknown group as
  ``# Error: Error -1 getting param in group '<group>'``;
- ``/axis-cgi/applications/list.cgi``: the XML list of installed applications.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import quoteattr

from aiohttp import web

from simulator.api.common import api_version, device_of, load_json
from simulator.device import Device
from simulator.identity import Identity, identity

routes = web.RouteTableDef()
log = logging.getLogger("simulator.api.vapix")

# ---- the JSON APIs ------------------------------------------------------------------------

#: Error codes of the VAPIX JSON APIs (API discovery, basic device information).
ERRORS: dict[int, str] = {
    1000: "Invalid parameter value specified",
    2002: "HTTP request type not supported. Only POST is supported",
    2003: "Requested API version is not supported",
    2004: "Method not supported",
    4000: "Invalid JSON",
    4002: "Required parameter missing or invalid",
    8000: "Internal error",
}


class VapixError(Exception):
    """An error a VAPIX JSON API reports in its envelope."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        self.code = code
        self.message = detail or ERRORS[code]
        super().__init__(f"{code}: {self.message}")


@dataclass
class Call:
    """A JSON API request as far as it was understood, kept for its response."""

    context: Any = None
    method: Any = None
    params: Any = None


Method = Callable[[Device, Call], dict[str, Any]]


@dataclass(frozen=True)
class JsonApi:
    """One VAPIX JSON API: its version, methods and its ``getSupportedVersions``."""

    version: str
    methods: dict[str, Method] = field(default_factory=dict)

    def envelope(self, call: Call, **body: Any) -> web.Response:
        """The response: apiVersion (not for getSupportedVersions), context if sent, method."""
        out: dict[str, Any] = {}
        if call.method != "getSupportedVersions" or "error" in body:
            out["apiVersion"] = self.version
        if call.context is not None:
            out["context"] = call.context
        if call.method is not None:
            out["method"] = call.method
        out.update(body)
        return web.json_response(out)

    def check_version(self, call: Call, version: Any) -> None:
        """Methods other than getSupportedVersions need a supported ``apiVersion``."""
        if call.method == "getSupportedVersions":
            if version is not None:
                raise VapixError(
                    4002, "'apiVersion' must not be provided for method 'getSupportedVersions'"
                )
            return
        if version is None:
            raise VapixError(4002, "Required parameter missing or invalid: apiVersion")
        asked, (major, minor) = api_version(str(version)), self.numbers()
        if asked is None:
            raise VapixError(4002, f"Required parameter missing or invalid: apiVersion {version}")
        if asked[0] != major or asked[1] > minor:
            raise VapixError(2003, f"Requested API version is not supported: {version}")

    def numbers(self) -> tuple[int, int]:
        """This API's version as (major, minor)."""
        major, _, minor = self.version.partition(".")
        return int(major), int(minor)

    async def handle(self, request: web.Request) -> web.Response:
        """Parse, dispatch, answer; every VapixError becomes this API's error envelope."""
        call = Call()
        try:
            if request.method != "POST":
                raise VapixError(2002)
            try:
                body = load_json(await request.read())
            except ValueError:
                raise VapixError(4000) from None
            if not isinstance(body, dict):
                raise VapixError(4000, "Invalid JSON: the request must be a JSON object")
            if isinstance(body.get("context"), str):
                call.context = body["context"]
            if not isinstance(body.get("method"), str):
                raise VapixError(4002, "Required parameter missing or invalid: method")
            call.method = body["method"]
            method = self.methods.get(call.method)
            if method is None and call.method != "getSupportedVersions":
                raise VapixError(2004, f"Method not supported: {call.method}")
            self.check_version(call, body.get("apiVersion"))
            call.params = body.get("params")
            if method is None:
                return self.envelope(call, data={"apiVersions": [self.version]})
            return self.envelope(call, data=method(device_of(request), call))
        except VapixError as exc:
            return self.envelope(call, error={"code": exc.code, "message": exc.message})
        except Exception:
            log.exception("unexpected failure on %s %s", request.method, request.path)
            return self.envelope(call, error={"code": 8000, "message": ERRORS[8000]})


DOC = "https://developer.axis.com/vapix/network-video/"

#: What API discovery lists: only the APIs the simulated device answers.
API_LIST = (
    ("api-discovery", "1.0", "API Discovery Service", "api-discovery-service"),
    ("basic-device-info", "1.1", "Basic Device Information", "basic-device-information"),
    ("param-cgi", "1.0", "Legacy Parameter Handling", "parameter-management"),
)


def _get_api_list(device: Device, call: Call) -> dict[str, Any]:
    return {
        "apiList": [
            {"id": i, "version": v, "name": n, "docLink": DOC + page, "status": "official"}
            for i, v, n, page in API_LIST
        ]
    }


def basic_properties(ident: Identity) -> dict[str, str]:
    """The properties of basic device information, from the device's identity."""
    return {
        "Architecture": ident.architecture,
        "Brand": ident.brand,
        "BuildDate": ident.build_date,
        "HardwareID": ident.hardware_id,
        "ProdFullName": ident.prod_full_name,
        "ProdNbr": ident.prod_nbr,
        "ProdShortName": ident.prod_short_name,
        "ProdType": ident.prod_type,
        "ProdVariant": ident.prod_variant,
        "SerialNumber": ident.serial,
        "Soc": ident.soc,
        "SocSerialNumber": ident.soc_serial,
        "Version": ident.version,
        "WebURL": ident.web_url,
    }


def _get_all_properties(device: Device, call: Call) -> dict[str, Any]:
    return {"propertyList": basic_properties(identity(device.cfg))}


def _get_properties(device: Device, call: Call) -> dict[str, Any]:
    names = call.params.get("propertyList") if isinstance(call.params, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise VapixError(4002, "Required parameter missing or invalid: propertyList")
    props = basic_properties(identity(device.cfg))
    unknown = [n for n in names if n not in props]
    if unknown:
        raise VapixError(1000, f"Invalid parameter value specified: {unknown[0]}")
    return {"propertyList": {n: props[n] for n in names}}


API_DISCOVERY = JsonApi("1.0", {"getApiList": _get_api_list})
BASIC_DEVICE_INFO = JsonApi(
    "1.1", {"getAllProperties": _get_all_properties, "getProperties": _get_properties}
)

for _path, _api in (
    ("/axis-cgi/apidiscovery.cgi", API_DISCOVERY),
    ("/axis-cgi/basicdeviceinfo.cgi", BASIC_DEVICE_INFO),
):
    routes.post(_path)(_api.handle)
    routes.get(_path, allow_head=False)(_api.handle)


# ---- param.cgi ----------------------------------------------------------------------------


def parameters(device: Device) -> list[tuple[str, str]]:
    """The device's parameters as ``(root.Group.Name, value)``, in the device's order."""
    cfg = device.cfg
    ident = identity(cfg)
    ip = cfg.ip_address
    net = ip.rsplit(".", 1)[0]
    mac = cfg.mac.upper()
    host = f"axis-{cfg.serial.lower()}"
    groups: dict[str, list[tuple[str, str]]] = {
        "Brand": [
            ("Brand", ident.brand),
            ("ProdFullName", ident.prod_full_name),
            ("ProdNbr", ident.prod_nbr),
            ("ProdShortName", ident.prod_short_name),
            ("ProdType", ident.prod_type),
            ("ProdVariant", ident.prod_variant),
            ("WebURL", ident.web_url),
        ],
        "Input": [("NbrOfInputs", "1")],
        "IOPort": [
            ("I0.Configurable", "no"),
            ("I0.Direction", "input"),
            ("I0.Input.Name", "Input 1"),
            ("I0.Input.Trig", "closed"),
            ("I1.Configurable", "no"),
            ("I1.Direction", "output"),
            ("I1.Output.Active", "closed"),
            ("I1.Output.Button", "none"),
            ("I1.Output.DelayTime", "0"),
            ("I1.Output.Mode", "bistable"),
            ("I1.Output.Name", "Output 1"),
            ("I1.Output.PulseTime", "0"),
        ],
        "Network": [
            ("BootProto", "none"),
            ("Broadcast", f"{net}.255"),
            ("DefaultRouter", f"{net}.1"),
            ("DomainName", ""),
            ("Enabled", "yes"),
            ("HostName", host),
            ("IPAddress", ip),
            ("SubnetMask", "255.255.255.0"),
            ("Bonjour.Enabled", "yes"),
            ("Bonjour.FriendlyName", f"{ident.prod_short_name} - {ident.serial}"),
            ("eth0.Broadcast", f"{net}.255"),
            ("eth0.IPAddress", ip),
            ("eth0.MACAddress", mac),
            ("eth0.SubnetMask", "255.255.255.0"),
        ],
        "Output": [("NbrOfOutputs", "1")],
        "Properties": [
            ("API.HTTP.AdminPath", "/"),
            ("API.HTTP.Version", "3"),
            ("API.Metadata.Metadata", "no"),
            ("API.Metadata.Version", "1.0"),
            ("ApiDiscovery.ApiDiscovery", "yes"),
            ("EmbeddedDevelopment.EmbeddedDevelopment", "yes"),
            ("EmbeddedDevelopment.Version", ident.embedded_development),
            ("Firmware.BuildDate", ident.build_date),
            ("Firmware.BuildNumber", "1"),
            ("Firmware.Version", ident.version),
            ("HTTPS.HTTPS", "yes"),
            ("Image.Format", "jpeg,mjpeg,h264"),
            ("Image.NbrOfViews", "1"),
            ("Image.Resolution", "640x480,320x240"),
            ("Image.Rotation", "0,180"),
            ("PTZ.PTZ", "no"),
            ("System.Architecture", ident.architecture),
            ("System.HardwareID", ident.hardware_id),
            ("System.Language", "English"),
            ("System.LanguageType", "default"),
            ("System.SerialNumber", ident.serial),
            ("System.Soc", ident.soc),
        ],
    }
    return [(f"root.{g}.{name}", value) for g, items in groups.items() for name, value in items]


def list_params(device: Device, group: str | None) -> str:
    """The ``action=list`` body: each requested group's lines, or its error line."""
    params = parameters(device)
    if not group:
        return "".join(f"{k}={v}\n" for k, v in params)
    out: list[str] = []
    for g in group.split(","):
        g = g.strip()
        full = g if g == "root" or g.startswith("root.") else f"root.{g}"
        hits = [(k, v) for k, v in params if full in ("root", k) or k.startswith(full + ".")]
        if hits:
            out.extend(f"{k}={v}\n" for k, v in hits)
        else:
            out.append(f"# Error: Error -1 getting param in group '{g}'\n")
    return "".join(out)


@routes.get("/axis-cgi/param.cgi")
@routes.post("/axis-cgi/param.cgi")
async def param_cgi(request: web.Request) -> web.Response:
    """List parameters by GET query or POST form (any Content-Type); read-only."""
    args = dict(request.query)
    if request.method == "POST":
        body = (await request.read()).decode("utf-8", "replace")
        args.update(parse_qsl(body, keep_blank_values=True))
    action = args.get("action")
    if action != "list":
        what = f"action '{action}' is not supported" if action else "no action"
        return web.Response(text=f"# Error: {what}\n", content_type="text/plain")
    return web.Response(
        text=list_params(device_of(request), args.get("group")), content_type="text/plain"
    )


# ---- applications/list.cgi ----------------------------------------------------------------


def applications_xml(device: Device) -> str:
    """The installed applications: the people counter, running, licensed with the device."""
    ident = identity(device.cfg)
    attrs = {
        "Name": ident.app_name,
        "NiceName": ident.app_nice_name,
        "Vendor": "Axis Communications",
        "Version": ident.app_version,
        "License": "None",
        "Status": "Running",
        "ConfigurationPage": f"local/{ident.app_name}/index.html",
        "VendorHomePage": "http://www.axis.com",
    }
    app = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
    return f'<reply result="ok">\n <application {app} />\n</reply>\n'


@routes.get("/axis-cgi/applications/list.cgi")
@routes.post("/axis-cgi/applications/list.cgi")
async def list_applications(request: web.Request) -> web.Response:
    """The installed applications as XML."""
    return web.Response(text=applications_xml(device_of(request)), content_type="text/xml")
