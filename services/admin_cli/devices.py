"""``uniql devices``: list edge devices and show one device's latest state and history."""

from __future__ import annotations

from typing import Any

import click

from services.admin_cli.client import ApiClient, with_client
from services.admin_cli.output import (
    echo_json,
    echo_table,
    human_bytes,
    json_option,
    short_time,
)


@click.group(name="devices")
def devices() -> None:
    """List the edge devices known to a cloud service.

    Exit codes: 0 ok, 1 API error, 2 usage, 3 server unreachable, 4 authentication failed, 5 not found.
    """


def heartbeat_cells(beat: dict[str, Any] | None) -> list[str]:
    if beat is None:
        return ["-", "-", "-", "-"]
    throughput = beat.get("tokens_per_second")
    return [f"{beat['rate'] * 100:g}%", ",".join(str(band) for band in beat["bands"]) or "none",
            human_bytes(beat["available_memory_bytes"]), f"{throughput:.1f}" if throughput is not None else "-"]


@devices.command(name="list")
@click.option("--namespace", help="Show only devices of this namespace.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200), help="Maximum number of devices to show.")
@json_option
@with_client
def list_devices(client: ApiClient, namespace: str | None, limit: int, as_json: bool) -> None:
    """List devices with their latest heartbeat, most recently seen first."""
    params: dict[str, Any] = {"limit": limit}
    if namespace:
        params["namespace"] = namespace
    page = client.get_json("/v1/devices", params=params)
    if as_json:
        echo_json(page)
        return
    echo_table(["ID", "DEVICE", "RATE", "BANDS", "AVAILABLE", "TOKENS/S", "LAST SEEN"],
               [[device["id"], f"{device['namespace']}/{device['name']}", *heartbeat_cells(device["last_heartbeat"]),
                 short_time(device["last_seen_at"])] for device in page["items"]])


@devices.command(name="show")
@click.argument("device_id")
@click.option("--history", default=10, show_default=True, type=click.IntRange(0, 5000),
              help="Number of latest heartbeats to print.")
@json_option
@with_client
def show_device(client: ApiClient, device_id: str, history: int, as_json: bool) -> None:
    """Show a device's hardware, latest state and recent heartbeats."""
    device = client.get_json(f"/v1/devices/{device_id}")
    beats: list[dict[str, Any]] = []
    if history:
        # The history endpoint pages oldest first; keep the latest ``history`` entries.
        after = 0
        while True:
            page = client.get_json(f"/v1/devices/{device_id}/heartbeats", params={"after": after, "limit": 5000})
            beats = (beats + page["items"])[-history:]
            if not page["items"]:
                break
            after = page["next_after"]
    if as_json:
        echo_json({**device, "heartbeats": beats})
        return
    click.echo(f"device {device['id']}: {device['namespace']}/{device['name']}, model {device['model'] or '-'}")
    click.echo(f"registered {short_time(device['registered_at'])}, last seen {short_time(device['last_seen_at'])}")
    for key, value in sorted(device["hardware"].items()):
        click.echo(f"{key}: {value}")
    echo_table(["TIME", "RATE", "BANDS", "AVAILABLE", "TOKENS/S"],
               [[short_time(beat["created_at"]), *heartbeat_cells(beat)] for beat in beats])
