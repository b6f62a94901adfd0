"""The client's OS evidence for the network type: parsers of ip/nmcli/mmcli output, the decision, and
the bounded, never-failing look-up (this machine has neither nmcli nor mmcli)."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from ispeed.client.netinfo import (
    DeviceNetwork,
    NmDevice,
    classify,
    device_network,
    network_type_of_access,
    parse_mmcli_access,
    parse_nmcli_devices,
    parse_route_device,
    split_terse,
)

# `nmcli -t -f DEVICE,TYPE,STATE device` on a laptop with Ethernet, Wi-Fi and a USB modem
# (NetworkManager lists the modem by its control port, cdc-wdm0; its data interface is wwan0).
NMCLI = """enp0s31f6:ethernet:connected
wlp0s20f3:wifi:connected
cdc-wdm0:gsm:connected
docker0:bridge:connected (externally)
tun0:tun:connected (externally)
p2p-dev-wlp0s20f3:wifi-p2p:disconnected
lo:loopback:connected (externally)
"""
ROUTE_WIFI = "1.1.1.1 via 192.168.1.1 dev wlp0s20f3 src 192.168.1.23 uid 1000 \n    cache \n"
ROUTE_LOOPBACK = "local 127.0.0.1 dev lo src 127.0.0.1 uid 1000 \n    cache <local> \n"
ROUTE_WWAN = "203.113.131.1 dev wwan0 src 10.145.22.7 uid 1000 \n    cache \n"
ROUTE_V6 = (
    "2001:4860:4860::8888 from :: via fe80::1 dev enp0s31f6 proto ra src 2402:800:6314:1::5 metric 100 pref medium\n"
)
# `mmcli -m any --output-keyvalue` (ModemManager 1.20), a 5G NSA modem; trimmed to the lines that matter
MMCLI_5G = """modem.dbus-path                                 : /org/freedesktop/ModemManager1/Modem/0
modem.generic.manufacturer                      : Quectel
modem.generic.model                             : RM502Q-AE
modem.generic.state                             : connected
modem.generic.access-technologies.length        : 2
modem.generic.access-technologies.value[1]      : lte
modem.generic.access-technologies.value[2]      : 5gnr
modem.generic.signal-quality.value              : 71
modem.3gpp.operator-name                        : Viettel
"""
MMCLI_LTE = MMCLI_5G.replace("length        : 2", "length        : 1").replace(
    "modem.generic.access-technologies.value[2]      : 5gnr\n", ""
)
MMCLI_NONE = "modem.generic.state : registered\nmodem.generic.access-technologies.length : 0\n"


def test_parsers() -> None:
    assert parse_nmcli_devices(NMCLI)[:3] == [
        NmDevice("enp0s31f6", "ethernet", "connected"),
        NmDevice("wlp0s20f3", "wifi", "connected"),
        NmDevice("cdc-wdm0", "gsm", "connected"),
    ]
    assert len(parse_nmcli_devices(NMCLI)) == 7 and parse_nmcli_devices("garbage\n\n") == []
    assert split_terse(r"br\:lan:bridge:connected") == ["br:lan", "bridge", "connected"]
    assert split_terse("a\\\\b:ethernet:connected") == ["a\\b", "ethernet", "connected"]
    assert [parse_route_device(t) for t in (ROUTE_WIFI, ROUTE_LOOPBACK, ROUTE_WWAN, ROUTE_V6, "")] == [
        "wlp0s20f3",
        "lo",
        "wwan0",
        "enp0s31f6",
        None,
    ]
    assert parse_mmcli_access(MMCLI_5G) == ["lte", "5gnr"]
    assert parse_mmcli_access(MMCLI_LTE) == ["lte"]
    assert parse_mmcli_access(MMCLI_NONE) == []
    assert parse_mmcli_access("modem.generic.access-technologies : hsdpa, hsupa\n") == ["hsdpa", "hsupa"]
    assert [
        network_type_of_access(t)
        for t in (["lte", "5gnr"], ["lte"], ["umts"], ["edge"], ["gsm"], ["hspa-plus"], [], ["unknown"])
    ] == ["5g", "mobile", "mobile", "mobile", "mobile", "mobile", None, None]


def test_decisions() -> None:
    devices = parse_nmcli_devices(NMCLI)
    assert classify("enp0s31f6", devices, None) == DeviceNetwork("fixed", "enp0s31f6: ethernet")
    wifi = classify("wlp0s20f3", devices, None)
    assert wifi.network_type is None and "hotspot" in wifi.detail
    assert classify("wwan0", devices, ["lte", "5gnr"]) == DeviceNetwork("5g", "wwan0: modem, access lte, 5gnr")
    assert classify("wwan0", devices, ["lte"]).network_type == "mobile"
    assert classify("wwan0", None, None) == DeviceNetwork("mobile", "wwan0: modem, access technology unknown")
    assert classify("cdc-wdm0", devices, ["umts"]).network_type == "mobile"  # listed as gsm
    assert classify("tun0", devices, ["lte"]).network_type is None  # a VPN hides the uplink
    assert classify("docker0", devices, None).network_type is None
    assert classify("lo", devices, None).network_type is None
    assert classify("eth0", None, None) == DeviceNetwork(None, "eth0: nmcli not available")
    assert classify(None, devices, None).network_type is None
    # an interface NetworkManager does not list, while its modem is connected, is the modem's
    assert classify("usb0", devices, ["lte"]).network_type == "mobile"
    without_modem = [d for d in devices if d.type != "gsm"]
    assert classify("usb0", without_modem, None) == DeviceNetwork(None, "usb0: not a NetworkManager device")


def test_on_this_machine_it_says_nothing_quickly() -> None:
    start = time.monotonic()
    assert device_network("127.0.0.1") == DeviceNetwork(None, "lo: the server is on this machine")
    assert device_network("::1").network_type is None
    assert device_network("not-an-ip") == DeviceNetwork(None, "'not-an-ip' is not an IP address")
    if shutil.which("nmcli") is None and shutil.which("mmcli") is None:
        got = device_network("192.0.2.1")  # routed, not sent: `ip route get` only asks the kernel
        assert got.network_type is None, got
    assert time.monotonic() - start < 2.0


def _tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_reads_the_tools_through_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The subprocess path with stand-ins for ip/nmcli/mmcli printing the samples (the real tools are absent here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    assert device_network("192.0.2.1") == DeviceNetwork(None, "`ip route get` not available")
    (tmp_path / "route").write_text(ROUTE_WWAN)
    (tmp_path / "nmcli").write_text(NMCLI)
    (tmp_path / "mmcli").write_text(MMCLI_5G)
    for name in ("ip", "nmcli", "mmcli"):
        _tool(
            bin_dir,
            name,
            f'[ "$LC_ALL" = C ] || exit 3\nwhile read -r l; do echo "$l"; done '
            f"< {tmp_path / (name if name != 'ip' else 'route')}\n",
        )
    assert device_network("203.113.131.1") == DeviceNetwork("5g", "wwan0: modem, access lte, 5gnr")
    (tmp_path / "route").write_text(ROUTE_WIFI)
    assert device_network("1.1.1.1").network_type is None
    _tool(bin_dir, "mmcli", "exit 1\n")  # ModemManager not running
    (tmp_path / "route").write_text(ROUTE_WWAN)
    assert device_network("203.113.131.1") == DeviceNetwork("mobile", "wwan0: modem, access technology unknown")


def test_a_hanging_tool_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _tool(bin_dir, "ip", f"echo '{ROUTE_WIFI.splitlines()[0]}'\n")
    _tool(bin_dir, "nmcli", "exec sleep 30\n")
    sleep = shutil.which("sleep")
    assert sleep is not None
    os.symlink(sleep, bin_dir / "sleep")
    monkeypatch.setenv("PATH", str(bin_dir))
    start = time.monotonic()
    got = device_network("1.1.1.1", timeout_s=0.5)
    assert time.monotonic() - start < 1.5
    assert got == DeviceNetwork(None, "wlp0s20f3: nmcli not available")
    start = time.monotonic()
    device_network("1.1.1.1", timeout_s=60)  # capped at 2 s whatever the caller asks
    assert time.monotonic() - start < 3.0
