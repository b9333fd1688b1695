"""What a device says it is: product identity per model, with the scenario's overrides.

The values for each model are plausible, not read off real units (the vendor page gives
none); every one can be overridden in the scenario's ``product`` section.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from simulator.schema.scenario import DeviceConfig

#: The defaults per device model (``DeviceConfig.model``).
MODEL_DEFAULTS: dict[str, dict[str, str]] = {
    "P8815-2": {
        "prod_nbr": "P8815-2",
        "prod_full_name": "AXIS P8815-2 3D People Counter",
        "prod_short_name": "AXIS P8815-2",
        "prod_type": "People Counter",
        "prod_variant": "",
        "architecture": "aarch64",
        "soc": "Ambarella CV25",
        "hardware_id": "9A5",
        "build_date": "Mar 12 2024 10:15",
        "app_name": "a3dpc",
        "app_nice_name": "AXIS 3D People Counter",
        "embedded_development": "3.5",
    },
    "3D People Counter": {
        "prod_nbr": "P8804",
        "prod_full_name": "AXIS P8804 Stereo Sensor Kit",
        "prod_short_name": "AXIS P8804",
        "prod_type": "Stereo Sensor Kit",
        "prod_variant": "",
        "architecture": "armv7hf",
        "soc": "Ambarella A5S",
        "hardware_id": "1A3",
        "build_date": "Oct 06 2016 14:02",
        "app_name": "stereo",
        "app_nice_name": "AXIS 3D People Counter",
        "embedded_development": "2.16",
    },
}

#: The counter application's default name, as the legacy API's sample shows it.
UNTITLED = "Untitled AXIS 3D People Counter"


@dataclass(frozen=True)
class Identity:
    """A device's product identity as VAPIX reports it."""

    brand: str
    prod_nbr: str
    prod_full_name: str
    prod_short_name: str
    prod_type: str
    prod_variant: str
    architecture: str
    soc: str
    soc_serial: str
    hardware_id: str
    build_date: str
    serial: str
    version: str
    web_url: str
    app_name: str
    app_nice_name: str
    app_version: str
    embedded_development: str


def identity(cfg: DeviceConfig) -> Identity:
    """The identity of a configured device: its model's defaults, then the scenario's values."""
    values = dict(MODEL_DEFAULTS[cfg.model])
    values.update({k: v for k, v in cfg.product.model_dump().items() if v is not None})
    digest = hashlib.sha256(cfg.serial_upper.encode()).hexdigest().upper()
    return Identity(
        brand="AXIS",
        prod_nbr=values["prod_nbr"],
        prod_full_name=values["prod_full_name"],
        prod_short_name=values["prod_short_name"],
        prod_type=values["prod_type"],
        prod_variant=values["prod_variant"],
        architecture=values["architecture"],
        soc=values["soc"],
        soc_serial=f"{digest[:8]}-{digest[8:16]}-{digest[16:24]}-{digest[24:32]}",
        hardware_id=values["hardware_id"],
        build_date=values["build_date"],
        serial=cfg.serial_upper,
        version=cfg.firmware_version,
        web_url="http://www.axis.com",
        app_name=values["app_name"],
        app_nice_name=values["app_nice_name"],
        app_version=cfg.application_version,
        embedded_development=values["embedded_development"],
    )
