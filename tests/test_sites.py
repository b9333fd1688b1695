"""A site with several doors: each door counts its own traffic, the site shares occupancy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from simulator.schema.load import load_scenario
from tests.conftest import ClientFactory, make_fleet

ROOT = Path(__file__).resolve().parent.parent
T = 1733140800.0 + 3 * 3600  # 2024-12-02 15:00 local (Monday)


def mall() -> Any:
    return make_fleet(load_scenario(ROOT / "scenarios" / "mall.yaml"), at=T)


def test_site_doors_share_one_occupancy_estimate() -> None:
    fleet = mall()
    doors = [fleet.fleet.by_id[i] for i in ("parking", "street", "metro")]
    readings = [d.realtime(d.clock.now()) for d in doors]
    assert len({(r.occupancy, r.total_in, r.total_out) for r in readings}) == 1
    day = doors[0].local_date(T)
    total_in = sum(int(d.observed(day, T).in_.sum()) for d in doors)
    assert readings[0].total_in == total_in
    shop = fleet.fleet.by_id["shop"].realtime(fleet.fleet.by_id["shop"].clock.now())
    assert shop.total_in == int(fleet.fleet.by_id["shop"].observed(day, T).in_.sum())


def test_doors_do_not_balance_alone_but_the_site_does() -> None:
    fleet = mall()
    doors = [fleet.fleet.by_id[i] for i in ("parking", "street", "metro")]
    day = doors[0].local_date(T) - timedelta(days=1)
    ins = [int(d.counts(day).in_.sum()) for d in doors]
    outs = [int(d.counts(day).out.sum()) for d in doors]
    assert any(abs(i - o) > 20 for i, o in zip(ins, outs, strict=True))
    # Counting errors keep the site from balancing exactly, but only by a few percent.
    assert abs(sum(ins) - sum(outs)) < 0.06 * sum(ins)


def test_site_peaks_cover_every_door() -> None:
    fleet = mall()
    primary = fleet.fleet.by_id["parking"]
    day = primary.local_date(T) - timedelta(days=1)
    occ, _ = primary.day_occupancy(day, T)
    alone = np.cumsum(primary.counts(day).in_ - primary.counts(day).out)
    assert occ.max() > alone.max()
    assert (occ >= 0).all()


async def test_adjust_on_primary_is_seen_on_secondaries(client_for: ClientFactory) -> None:
    fleet = mall()
    primary = await client_for(fleet, "operator")
    fleet.fleet.bind(fleet.fleet.by_id["parking"], "127.0.0.1", primary.port)
    body = {"apiVersion": "1", "method": "adjustOccupancy", "params": {"occupancy": 4000}}
    r = await primary.post("/axis-cgi/a3dpc.cgi", json=body)
    assert "error" not in await r.json()
    metro = fleet.fleet.by_id["metro"]
    assert metro.realtime(metro.clock.now()).occupancy == 4000
    secondary = await client_for(fleet, "operator")
    fleet.fleet.bind(fleet.fleet.by_id["street"], "127.0.0.1", secondary.port)
    r = await secondary.post("/axis-cgi/a3dpc.cgi", json=body)
    assert (await r.json())["error"]["code"] == 1200
