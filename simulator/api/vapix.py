"""VAPIX device discovery, served by every model: what client libraries ask before anything.

- ``/axis-cgi/apidiscovery.cgi`` and ``/axis-cgi/basicdeviceinfo.cgi``: JSON APIs in the
  VAPIX envelope, errors as ``{"error": {"code", "message"}}`` (``VAPIX_ERROR_CODES``);
- ``/axis-cgi/param.cgi?action=list``: ``root.Group.Name=value`` lines, an unknown group as
  ``# Error: Error -1 getting param in group '<group>'``;
- ``/axis-cgi/applications/list.cgi``: the XML list of installed applications.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import quoteattr

from aiohttp import web

from simulator.api.common import api_version, device_of
from simulator.api.jsonrpc import Call, JsonRpcApi, Method
from simulator.device import Device
from simulator.errors import (
    VapixError,
    VapixInternalError,
    VapixInvalidJson,
    VapixInvalidValue,
    VapixMethodNotSupported,
    VapixParameterInvalid,
    VapixPostOnly,
    VapixVersionNotSupported,
)
from simulator.identity import Identity, identity

routes = web.RouteTableDef()

# ---- the JSON APIs ------------------------------------------------------------------------

SUPPORTED_VERSIONS = "getSupportedVersions"  # every VAPIX JSON API has it, without apiVersion


class VapixJsonApi(JsonRpcApi):
    """A VAPIX JSON API: POST only, method checked before apiVersion, method before data."""

    error_type = VapixError
    internal = VapixInternalError
    invalid_json = VapixInvalidJson
    missing = VapixParameterInvalid
    unsupported_version = VapixVersionNotSupported
    unknown_method = VapixMethodNotSupported
    method_first = True
    post_only = VapixPostOnly  # GET is routed here to answer 2002

    def __init__(self, version: str, methods: Mapping[str, Method]) -> None:
        super().__init__(version, {**methods, SUPPORTED_VERSIONS: self._supported_versions})

    def _supported_versions(self, device: Device, params: Any) -> dict[str, Any]:
        return {"apiVersions": [self.version]}

    def read_call(self, body: dict[str, Any], call: Call) -> Method:
        """Context (ignored unless text), the method, then apiVersion."""
        if isinstance(body.get("context"), str):
            call.context = body["context"]
        if not isinstance(body.get("method"), str):
            raise VapixParameterInvalid("method")
        call.method = body["method"]
        method = self.lookup(call.method)
        if call.method != SUPPORTED_VERSIONS:
            self.check_version(body.get("apiVersion"))
        elif body.get("apiVersion") is not None:
            raise VapixParameterInvalid(
                message=f"'apiVersion' must not be provided for method '{SUPPORTED_VERSIONS}'"
            )
        call.params = body.get("params")
        return method

    def read_version(self, version: Any) -> tuple[int, int] | None:
        """Any JSON value whose text is ``major[.minor]`` (``1`` reads as 1.0)."""
        return api_version(str(version))

    def malformed_version(self, version: Any) -> VapixError:
        """4002, naming the parameter and the value given."""
        return VapixParameterInvalid(f"apiVersion {version}")

    def states_version(self, call: Call, body: Mapping[str, Any]) -> bool:
        """getSupportedVersions answers its data without apiVersion."""
        return call.method != SUPPORTED_VERSIONS or "error" in body


DOC = "https://developer.axis.com/vapix/network-video/"

#: What API discovery lists: only the APIs the simulated device answers.
API_LIST = (
    ("api-discovery", "1.0", "API Discovery Service", "api-discovery-service"),
    ("basic-device-info", "1.1", "Basic Device Information", "basic-device-information"),
    ("param-cgi", "1.0", "Legacy Parameter Handling", "parameter-management"),
)


def _get_api_list(device: Device, params: Any) -> dict[str, Any]:
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


def _get_all_properties(device: Device, params: Any) -> dict[str, Any]:
    return {"propertyList": basic_properties(identity(device.cfg))}


def _get_properties(device: Device, params: Any) -> dict[str, Any]:
    names = params.get("propertyList") if isinstance(params, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise VapixParameterInvalid("propertyList")
    props = basic_properties(identity(device.cfg))
    unknown = [n for n in names if n not in props]
    if unknown:
        raise VapixInvalidValue(unknown[0])
    return {"propertyList": {n: props[n] for n in names}}


API_DISCOVERY = VapixJsonApi("1.0", {"getApiList": _get_api_list})
BASIC_DEVICE_INFO = VapixJsonApi(
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
