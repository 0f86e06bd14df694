"""The users of bench/load_mixed.py (run by locust, never imported by Django): feed pollers, map readers and API
writers. Writers record every write the server acknowledged, so the driver can look for each one afterwards."""

from __future__ import annotations

import json
import os
import random
import uuid

from locust import HttpUser, between, events, task

TOKENS: list[str] = json.loads(os.environ["AUMAN_BENCH_TOKENS"])
ACK_FILE = os.environ["AUMAN_BENCH_ACKS"]
ACKS: list[dict] = []
# Central Mannheim, inside the service area (WGS84; checked against auman/data/mannheim_boundary.geojson).
WEST, SOUTH, EAST, NORTH = 8.47, 49.47, 8.50, 49.50


def _line() -> dict:
    lon, lat = random.uniform(WEST, EAST - 0.003), random.uniform(SOUTH, NORTH - 0.002)
    return {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.002, lat + 0.001]]}


class FeedPoller(HttpUser):
    """A navigation app polling the WZDx feed."""

    weight = 2
    wait_time = between(0.2, 0.6)

    @task
    def poll(self) -> None:
        self.client.get("/feeds/wzdx/v4.2/workzones.geojson", name="feed wzdx")


class MapReader(HttpUser):
    """Someone panning the public map."""

    weight = 3
    wait_time = between(0.1, 0.4)

    @task
    def read(self) -> None:
        lon, lat = random.uniform(WEST, EAST - 0.02), random.uniform(SOUTH, NORTH - 0.015)
        bbox = f"{lon:.5f},{lat:.5f},{lon + 0.02:.5f},{lat + 0.02:.5f}"
        self.client.get(f"/map/features.geojson?bbox={bbox}", name="map bbox")


class Writer(HttpUser):
    """An applicant's system writing through the API: create a draft, then change its title."""

    weight = 1
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Token {random.choice(TOKENS)}"

    @task
    def create_and_edit(self) -> None:
        title = f"Lasttest {uuid.uuid4().hex[:10]}"
        body = {
            "type": "Feature",
            "geometry": _line(),
            "properties": {
                "title": title,
                "street_names": ["Lastteststraße"],
                "period": {"lower": "2027-05-03T07:00:00+02:00", "upper": "2027-05-07T17:00:00+02:00"},
            },
        }
        with self.client.post("/api/v1/roadworks/", json=body, name="api POST roadwork", catch_response=True) as r:
            if r.status_code != 201:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            work = r.json()
        ACKS.append({"id": work["id"], "title": title})
        new_title = title + " geändert"
        patch = {"properties": {"title": new_title}}
        headers = {"If-Match": r.headers.get("ETag", '"1"')}
        url = f"/api/v1/roadworks/{work['id']}/"
        with self.client.patch(url, json=patch, headers=headers, name="api PATCH roadwork", catch_response=True) as p:
            if p.status_code != 200:
                p.failure(f"{p.status_code}: {p.text[:200]}")
                return
        ACKS.append({"id": work["id"], "title": new_title})


@events.test_stop.add_listener
def _write_acks(**kwargs) -> None:
    with open(ACK_FILE, "w") as out:
        json.dump(ACKS, out)
