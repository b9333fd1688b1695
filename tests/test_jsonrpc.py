"""The shared JSON-RPC machinery and the error tables: one code table, one class per code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from simulator import errors
from simulator.api import vapix
from simulator.errors import ERROR_CODES, METHOD_ERRORS, VAPIX_ERROR_CODES, CodedError
from simulator.schema.scenario import DeviceConfig, OccupancyConfig, PassthroughConfig, Scenario
from tests.conftest import ClientFactory, make_fleet

Client = TestClient[Any, Any]
API = Path(__file__).resolve().parent.parent / "simulator" / "api"


def leaf_classes(base: type[CodedError]) -> dict[int, type[CodedError]]:
    """The exception classes below ``base``, by code (each code exactly once)."""
    found: dict[int, type[CodedError]] = {}
    for cls in base.__subclasses__():
        assert cls.code not in found, f"{cls.__name__} repeats {cls.code}"
        found[cls.code] = cls
    return found


@pytest.mark.parametrize(
    ("base", "table"),
    [(errors.DeviceError, ERROR_CODES), (errors.VapixError, VAPIX_ERROR_CODES)],
)
def test_every_code_of_a_table_has_its_exception_class(
    base: type[CodedError], table: dict[int, str]
) -> None:
    classes = leaf_classes(base)
    assert set(classes) == set(table)
    for code, cls in classes.items():
        if cls is errors.RejectedError:
            continue  # its messages are the method-specific ones
        assert cls().message == table[code]
        detailed = cls("apiVersion")
        assert detailed.detail == "apiVersion" and "apiVersion" in str(detailed)  # for the log
        # a3dpc answers the documented text exactly; VAPIX adds the detail
        expected = f"{table[code]}: apiVersion" if base is errors.VapixError else table[code]
        assert detailed.message == expected
        assert cls(message="own words").message == "own words"


def test_rejections_carry_code_1200_and_their_message() -> None:
    exc = errors.RejectedError(errors.MSG_SECONDARY)
    assert (exc.code, exc.message) == (1200, errors.MSG_SECONDARY)
    documented = {m for codes in METHOD_ERRORS.values() for m in codes[1200]}
    assert documented == {
        errors.MSG_SECONDARY,
        errors.MSG_ESTIMATION_OFF,
        errors.MSG_PASSTHROUGH_OFF,
    }


@pytest.mark.parametrize(
    ("device", "method"),
    [
        (DeviceConfig(occupancy=OccupancyConfig(role="secondary")), "adjustOccupancy"),
        (DeviceConfig(occupancy=OccupancyConfig(estimation=False)), "adjustOccupancy"),
        (DeviceConfig(passthrough=PassthroughConfig(events=False)), "restartPassthroughCountdown"),
    ],
)
async def test_a_rejection_on_the_wire_is_one_the_page_documents_for_the_method(
    client_for: ClientFactory, device: DeviceConfig, method: str
) -> None:
    client = await client_for(make_fleet(Scenario(devices=[device])), "operator")
    body = {"apiVersion": "1", "method": method, "params": {"occupancy": 0}}
    r = await client.post("/axis-cgi/a3dpc.cgi", json=body)
    error = (await r.json())["error"]
    assert error["code"] == 1200
    assert error["message"] in METHOD_ERRORS[method][1200]


def int_literals(source: str) -> set[int]:
    """The integer constants a module's code uses (strings and floats are not looked at)."""
    return {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and type(node.value) is int
    }


def test_no_api_module_writes_an_error_code_as_a_number() -> None:
    codes = set(ERROR_CODES) | set(VAPIX_ERROR_CODES)
    found = {
        f.name: sorted(hits)
        for f in sorted(API.glob("*.py"))
        if (hits := int_literals(f.read_text(encoding="utf-8")) & codes)
    }
    assert found == {}


async def test_unexpected_failure_of_a_vapix_method_is_8000_in_its_envelope(
    viewer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(vapix, "identity", boom)
    r = await viewer.post(
        "/axis-cgi/basicdeviceinfo.cgi",
        json={"apiVersion": "1.1", "context": "c", "method": "getAllProperties"},
    )
    assert r.status == 200
    assert await r.text() == (
        '{"apiVersion": "1.1", "context": "c", "method": "getAllProperties", '
        '"error": {"code": 8000, "message": "Internal error"}}'
    )


@pytest.mark.parametrize(
    "path", ["/axis-cgi/a3dpc.cgi", "/axis-cgi/apidiscovery.cgi", "/axis-cgi/basicdeviceinfo.cgi"]
)
async def test_a_body_above_the_size_limit_is_413_on_every_json_api(
    operator: Client, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = await operator.post(path, data=b"{" + b" " * (1024 * 1024) + b"}")
    assert r.status == 413
    assert not [rec for rec in caplog.records if rec.exc_info]  # no traceback logged
