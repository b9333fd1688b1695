"""VAPIX, served by every model: discovery, identity, users' groups, readiness, restart.

- ``/axis-cgi/apidiscovery.cgi``, ``/axis-cgi/basicdeviceinfo.cgi`` (its unrestricted
  properties without credentials) and ``/axis-cgi/systemready.cgi`` (anonymous): JSON APIs
  in the VAPIX envelope, errors as ``{"error": {"code", "message"}}`` (``VAPIX_ERROR_CODES``);
- ``/axis-cgi/usergroup.cgi``: the authenticated user's name and groups, two text lines;
- ``/axis-cgi/restart.cgi`` (administrator): the device goes away for ``restart_s`` of
  simulated time (a ``reboot`` event), then boots with a new boot id;
- ``/axis-cgi/disks/list.cgi``: the storage list (the SD card slot, no card);
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

from simulator.api.common import RUNTIME, USER, anonymous, api_version, device_of, requires
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
from simulator.schema.timeline import RebootEvent

routes = web.RouteTableDef()

# ---- the JSON APIs ------------------------------------------------------------------------

SUPPORTED_VERSIONS = "getSupportedVersions"  # every VAPIX JSON API has it; no apiVersion asked


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


DOC = "https://developer.axis.com/vapix/network-video/"

#: What API discovery lists: only the APIs the simulated device answers.
API_LIST = (
    ("api-discovery", "1.0", "API Discovery Service", "api-discovery-service"),
    ("basic-device-info", "1.1", "Basic Device Information", "basic-device-information"),
    ("param-cgi", "1.0", "Legacy Parameter Handling", "parameter-management"),
    ("systemready", "1.4", "Systemready", "systemready-api"),
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


#: The properties basic device information gives without credentials.
UNRESTRICTED = (
    "Brand", "BuildDate", "HardwareID", "ProdFullName", "ProdNbr", "ProdShortName",
    "ProdType", "ProdVariant", "SerialNumber", "Version", "WebURL",
)  # fmt: skip
GET_UNRESTRICTED = "getAllUnrestrictedProperties"


def _get_unrestricted_properties(device: Device, params: Any) -> dict[str, Any]:
    props = basic_properties(identity(device.cfg))
    return {"propertyList": {n: props[n] for n in UNRESTRICTED}}


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
    "1.1",
    {
        "getAllProperties": _get_all_properties,
        "getProperties": _get_properties,
        GET_UNRESTRICTED: _get_unrestricted_properties,
    },
)


def _system_ready(device: Device, params: Any) -> dict[str, Any]:
    """Ready (a device that answers has booted), set up, with its uptime and boot id."""
    now = device.clock.now()
    return {
        "systemready": "yes",
        "needsetup": "no",
        "uptime": str(int(device.uptime(now))),
        "bootid": device.boot_id(now),
    }


SYSTEM_READY = VapixJsonApi("1.4", {"systemready": _system_ready})


@anonymous(frozenset({GET_UNRESTRICTED}))
async def basic_device_info(request: web.Request) -> web.Response:
    """Basic device information; its unrestricted properties need no credentials."""
    return await BASIC_DEVICE_INFO.handle(request)


@anonymous()
async def system_ready(request: web.Request) -> web.Response:
    """Whether the device is ready, without credentials."""
    return await SYSTEM_READY.handle(request)


for _path, _handler in (
    ("/axis-cgi/apidiscovery.cgi", API_DISCOVERY.handle),
    ("/axis-cgi/basicdeviceinfo.cgi", basic_device_info),
    ("/axis-cgi/systemready.cgi", system_ready),
):
    routes.post(_path)(_handler)
    routes.get(_path, allow_head=False)(_handler)


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


# ---- usergroup.cgi, restart.cgi, disks/list.cgi -------------------------------------------

#: The groups of each role, after the user's primary group (``users``; ``root`` for root).
ROLE_GROUPS = {
    "administrator": "admin operator viewer",
    "operator": "operator viewer",
    "viewer": "viewer",
}


def user_groups(device: Device, user: str) -> str:
    """The ``usergroup.cgi`` body: the user's name, then its groups, space-separated."""
    role = next((u.role for u in device.cfg.users if u.name == user), "viewer")
    if user == "root" and role == "administrator":
        return "root\nroot admin operator ptz viewer\n"  # root's fixed groups
    return f"{user}\nusers {ROLE_GROUPS[role]}\n"


@routes.get("/axis-cgi/usergroup.cgi")
@routes.post("/axis-cgi/usergroup.cgi")
async def usergroup_cgi(request: web.Request) -> web.Response:
    """The authenticated user's name and groups, as text."""
    text = user_groups(device_of(request), request[USER])
    return web.Response(text=text, content_type="text/plain")


RESTARTING = (
    "<html><head><title>Restarting</title></head>\n"
    "<body><h1>Restarting</h1>\n<p>The product is restarting. Please wait.</p></body></html>\n"
)


@routes.get("/axis-cgi/restart.cgi")
@routes.post("/axis-cgi/restart.cgi")
@requires("administrator")
async def restart_cgi(request: web.Request) -> web.Response:
    """Restart: answer, then go away for ``restart_s`` (a reboot event) and boot again."""
    device = device_of(request)
    event = RebootEvent(kind="reboot", device=device.id, down_s=device.cfg.restart_s)
    request.app[RUNTIME].inject(event)
    return web.Response(text=RESTARTING, content_type="text/html")


#: The storage of the device: its SD card slot, with no card in it.
SD_DISK = {
    "diskid": "SD_DISK",
    "name": "",
    "totalsize": "0",
    "freesize": "0",
    "cleanuplevel": "90",
    "cleanupmaxage": "7",
    "cleanuppolicy": "fifo",
    "locked": "no",
    "full": "no",
    "readonly": "no",
    "status": "disconnected",
    "filesystem": "",
    "group": "S0",
    "requiredfilesystem": "none",
    "encryptionenabled": "false",
    "diskencrypted": "false",
}


def disks_xml(diskid: str) -> str:
    """The disk list of ``diskid`` (``all`` by default): the SD card slot, empty."""
    disks = [SD_DISK] if diskid in ("all", SD_DISK["diskid"]) else []
    lines = [f"    <disk {' '.join(f'{k}={quoteattr(v)}' for k, v in d.items())} />" for d in disks]
    body = "".join(f"{line}\n" for line in lines)
    return (
        '<?xml version="1.0"?>\n<root>\n'
        f'  <disks numberofdisks="{len(disks)}">\n{body}  </disks>\n</root>\n'
    )


@routes.get("/axis-cgi/disks/list.cgi")
@routes.post("/axis-cgi/disks/list.cgi")
async def disks_list(request: web.Request) -> web.Response:
    """The device's storage, as XML."""
    return web.Response(text=disks_xml(request.query.get("diskid", "all")), content_type="text/xml")
