"""The device's error codes as tables, and the typed exceptions that carry them.

Each API that answers errors in a JSON envelope has one table of codes and one exception
class per code (as moto's ``exceptions.py``). An exception's message is the table's text,
or a message of its own (the documented 1200 rejections). A detail it is raised with (which
parameter, which value) is logged; a VAPIX API also answers it (``"<text>: <detail>"``),
the a3dpc API answers its documented text exactly. Converting them to the wire happens once
per API (``api/jsonrpc.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

#: The a3dpc control API's codes (vendor page, "General error codes", and the code every
#: method-specific rejection carries).
ERROR_CODES: dict[int, str] = {
    1100: "Internal error",
    1200: "Request rejected due to a lack of effect",  # only sent with one of MSG_* below
    2100: "API version not supported",
    2101: "Invalid JSON",
    2102: "Method not supported",
    2103: "Required parameter missing",
    2104: "Invalid parameter value specified",
    2105: "Authorization failed",
    2106: "Authentication failed",
    2107: "Transport level error",
}

# The exact 1200 messages of the vendor page.
MSG_SECONDARY = "Device is configured as occupancy secondary, adjust occupancy on primary device."
MSG_ESTIMATION_OFF = "Occupancy estimation is off, turn it on to use this feature."
MSG_PASSTHROUGH_OFF = "Allow passthrough threshold events is turned off."

#: The method-specific codes of the vendor page: method -> code -> its documented messages.
METHOD_ERRORS: dict[str, dict[int, tuple[str, ...]]] = {
    "adjustOccupancy": {1200: (MSG_SECONDARY, MSG_ESTIMATION_OFF)},
    "restartPassthroughCountdown": {1200: (MSG_PASSTHROUGH_OFF,)},
}

#: Error codes of the VAPIX JSON APIs (API discovery, basic device information).
VAPIX_ERROR_CODES: dict[int, str] = {
    1000: "Invalid parameter value specified",
    2002: "HTTP request type not supported. Only POST is supported",
    2003: "Requested API version is not supported",
    2004: "Method not supported",
    4000: "Invalid JSON",
    4002: "Required parameter missing or invalid",
    8000: "Internal error",
}


class CodedError(Exception):
    """An error answered with a code of its API's table and a message."""

    table: ClassVar[Mapping[int, str]]
    code: ClassVar[int]
    #: Whether the answered message carries the detail (``"<text>: <detail>"``) or only logs.
    answers_detail: ClassVar[bool] = True

    def __init__(self, detail: object = None, *, message: str | None = None) -> None:
        text = self.table[self.code]
        self.detail = None if detail is None else str(detail)
        if message is None:
            message = text if detail is None or not self.answers_detail else f"{text}: {detail}"
        self.message = message
        note = f" ({detail})" if detail is not None and message == text else ""
        super().__init__(f"{self.code}: {message}{note}")


# ---- the a3dpc API ------------------------------------------------------------------------


class DeviceError(CodedError):
    """An error of the a3dpc API (a code of ``ERROR_CODES``): its documented text exactly."""

    table = ERROR_CODES
    code = 1100
    answers_detail = False


class InternalError(DeviceError):
    """1100: the device failed unexpectedly."""

    code = 1100


class RejectedError(DeviceError):
    """1200: the request was valid but would have no effect in this configuration."""

    code = 1200

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


class VersionNotSupported(DeviceError):
    """2100: the apiVersion asked for is not served."""

    code = 2100


class InvalidJson(DeviceError):
    """2101: the body is not JSON, or not a JSON object."""

    code = 2101


class MethodNotSupported(DeviceError):
    """2102: no such method."""

    code = 2102


class ParameterMissing(DeviceError):
    """2103: a required parameter is missing."""

    code = 2103


class InvalidParameter(DeviceError):
    """2104: a parameter has an invalid value."""

    code = 2104


class AuthorizationFailed(DeviceError):
    """2105: the user may not call the method."""

    code = 2105


class AuthenticationFailed(DeviceError):
    """2106: the user is not who they claim to be."""

    code = 2106


class TransportError(DeviceError):
    """2107: the request failed at the transport level."""

    code = 2107


# ---- the VAPIX JSON APIs ------------------------------------------------------------------


class VapixError(CodedError):
    """An error of a VAPIX JSON API (a code of ``VAPIX_ERROR_CODES``)."""

    table = VAPIX_ERROR_CODES
    code = 8000


class VapixInvalidValue(VapixError):
    """1000: a parameter has an invalid value."""

    code = 1000


class VapixPostOnly(VapixError):
    """2002: the request was not a POST."""

    code = 2002


class VapixVersionNotSupported(VapixError):
    """2003: the apiVersion asked for is not served."""

    code = 2003


class VapixMethodNotSupported(VapixError):
    """2004: no such method."""

    code = 2004


class VapixInvalidJson(VapixError):
    """4000: the body is not JSON, or not a JSON object."""

    code = 4000


class VapixParameterInvalid(VapixError):
    """4002: a required parameter is missing or invalid."""

    code = 4002


class VapixInternalError(VapixError):
    """8000: the device failed unexpectedly."""

    code = 8000


# ---- the export APIs ----------------------------------------------------------------------


@dataclass
class FieldProblem:
    """One invalid query field of an export request."""

    field: str
    reason: str


@dataclass
class ValidationFailed(Exception):
    """HTTP 400 'Validation failed' with the fields at fault (the export APIs)."""

    problems: list[FieldProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{p.field}: {p.reason}" for p in self.problems)
