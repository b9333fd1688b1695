"""The device's error codes as one table, and the typed exceptions domain code raises."""

from __future__ import annotations

from dataclasses import dataclass, field

#: General error codes of the a3dpc control API (vendor page, "General error codes").
ERROR_CODES: dict[int, str] = {
    1100: "Internal error",
    1200: "Request rejected due to a lack of effect",
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


class DeviceError(Exception):
    """An error the device reports with one of its codes."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message if message is not None else ERROR_CODES[code]
        super().__init__(f"{code}: {self.message}")


class RejectedError(DeviceError):
    """Code 1200: the request was valid but would have no effect in this configuration."""

    def __init__(self, message: str) -> None:
        super().__init__(1200, message)


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
