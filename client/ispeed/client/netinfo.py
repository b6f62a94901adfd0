"""What this machine's OS says about the connection a test uses: fixed, mobile, 5G, or unknown.

Linux only, from the tools that know: `ip route get SERVER_IP` names the interface the test leaves
by; NetworkManager (`nmcli -t -f DEVICE,TYPE,STATE device`) says what kind of device that is;
ModemManager (`mmcli -m any --output-keyvalue`) says which radio a modem uses.

- A modem carries the route: nmcli lists the interface as `gsm`/`cdma`, or the interface is
  named like a modem's (wwan*, wwp*, ppp*, rmnet*), or NetworkManager does not list it while one
  of its modems is connected (NetworkManager lists a modem by its control port, cdc-wdm0 or
  ttyUSB2, not by its data interface wwan0). Then `5g` if the access technologies include
  `5gnr` (5G NSA reports `lte, 5gnr`), else `mobile` (lte, umts, hspa, edge, gsm, …; also
  when mmcli is missing or silent).
- Ethernet: `fixed`. The cable may lead to a 4G router or a USB-tethered phone (which also shows
  as ethernet), so the server never lets a device's `fixed` contradict a declared mobile type.
- Wi-Fi: None. The access point may be a home router on a fixed line or a phone's hotspot; the
  modem is then on the phone and this machine cannot know, so it says nothing rather than guess.
- Loopback, VPNs, tunnels, bridges, other devices, missing tools, other OSes: None.

`device_network` never raises and is bounded: every tool runs with a timeout, all of them within
`timeout_s` (default 2 s) together. It blocks: from async code, `await asyncio.to_thread(...)`.
The parsers are pure functions of the tools' text output.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import NamedTuple

MODEM_NAME = re.compile(r"^(wwan|wwp|ppp|rmnet|ccmni|usbnet)", re.IGNORECASE)
MODEM_TYPES = ("gsm", "cdma", "modem")
MOBILE_ACCESS = frozenset(
    {
        "gsm",
        "gsm-compact",
        "gprs",
        "edge",
        "umts",
        "hsdpa",
        "hsupa",
        "hspa",
        "hspa-plus",
        "1xrtt",
        "evdo0",
        "evdoa",
        "evdob",
        "lte",
        "lte-cat-m",
        "lte-nb-iot",
    }
)
DEFAULT_TIMEOUT_S = 2.0


class DeviceNetwork(NamedTuple):
    """What the OS reported: the network type (None when it cannot tell) and how it was found."""

    network_type: str | None  # fixed / mobile / 5g / None
    detail: str  # e.g. "wwan0: gsm modem, access lte", "wlp2s0: wifi (uplink unknown)", "nmcli not found"


class NmDevice(NamedTuple):
    device: str
    type: str
    state: str


def split_terse(line: str) -> list[str]:
    """One `nmcli -t` line into fields (':' separates; '\\:' and '\\\\' are escaped characters)."""
    fields, current, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            current.append(line[i + 1])
            i += 2
            continue
        if ch == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fields.append("".join(current))
    return fields


def parse_nmcli_devices(text: str) -> list[NmDevice]:
    """`nmcli -t -f DEVICE,TYPE,STATE device` output -> devices (lines without three fields are skipped)."""
    out = []
    for line in text.splitlines():
        fields = split_terse(line.rstrip("\r"))
        if len(fields) == 3 and fields[0]:
            out.append(NmDevice(*fields))
    return out


def parse_route_device(text: str) -> str | None:
    """The outgoing interface in `ip route get ADDRESS` output (`… dev wlp2s0 src …`), None if absent."""
    match = re.search(r"\bdev\s+(\S+)", text)
    return match.group(1) if match else None


def parse_mmcli_access(text: str) -> list[str]:
    """Access technologies from `mmcli -m any --output-keyvalue` (`modem.generic.access-technologies.value[N]
    : lte`; older versions print them comma-separated on `modem.generic.access-technologies : lte, 5gnr`)."""
    techs: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key.startswith("modem.generic.access-technologies"):
            continue
        if key.endswith(".length") or value in ("", "--"):
            continue
        techs.extend(t.strip().lower() for t in value.split(",") if t.strip())
    return techs


def network_type_of_access(techs: list[str]) -> str | None:
    """'5g' if 5gnr is among them, 'mobile' for any 2G/3G/4G technology, None otherwise."""
    if "5gnr" in techs:
        return "5g"
    if any(t in MOBILE_ACCESS for t in techs):
        return "mobile"
    return None


def classify(route_device: str | None, devices: list[NmDevice] | None, access: list[str] | None) -> DeviceNetwork:
    """The decision from what the tools said (None: the tool was missing or failed)."""
    if route_device is None:
        return DeviceNetwork(None, "no route to the server found")
    if route_device == "lo":
        return DeviceNetwork(None, "lo: the server is on this machine")
    known = {d.device: d for d in devices or ()}
    dev = known.get(route_device)
    modem = (dev is not None and dev.type in MODEM_TYPES) or (
        dev is None
        and (
            MODEM_NAME.match(route_device) is not None
            or any(d.type in MODEM_TYPES and d.state.startswith("connected") for d in devices or ())
        )
    )
    if modem:
        kind = network_type_of_access(access or [])
        if kind is not None:
            return DeviceNetwork(kind, f"{route_device}: modem, access {', '.join(access or [])}")
        return DeviceNetwork("mobile", f"{route_device}: modem, access technology unknown")
    if devices is None:
        return DeviceNetwork(None, f"{route_device}: nmcli not available")
    if dev is None:
        return DeviceNetwork(None, f"{route_device}: not a NetworkManager device")
    if dev.type == "ethernet":
        return DeviceNetwork("fixed", f"{route_device}: ethernet")
    if dev.type == "wifi":
        return DeviceNetwork(None, f"{route_device}: wifi (uplink unknown: a home router or a phone's hotspot)")
    return DeviceNetwork(None, f"{route_device}: {dev.type}")


def _run(argv: list[str], deadline: float) -> str | None:
    """stdout of a tool run with LC_ALL=C, or None if it is missing, fails or runs out of time."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or shutil.which(argv[0]) is None:
        return None
    try:
        # its own session, so that a tool stuck in a child of its own is stopped with it (by group id)
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            start_new_session=True,
        )
    except (OSError, ValueError):
        return None
    try:
        out, _ = proc.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        return None
    return out if proc.returncode == 0 else None


def device_network(server_ip: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> DeviceNetwork:
    """What the OS says about the connection to server_ip (an IP address); never raises."""
    try:
        if not sys.platform.startswith("linux"):
            return DeviceNetwork(None, f"not reported on {sys.platform}")
        try:
            addr = ipaddress.ip_address(server_ip)
        except ValueError:
            return DeviceNetwork(None, f"{server_ip!r} is not an IP address")
        deadline = time.monotonic() + min(max(timeout_s, 0.1), DEFAULT_TIMEOUT_S)
        route = _run(["ip", "route", "get", str(addr)], deadline)
        if route is None:
            return DeviceNetwork(None, "`ip route get` not available")
        device = parse_route_device(route)
        if device is None or device == "lo":
            return classify(device, None, None)
        nm_text = _run(["nmcli", "-t", "-f", "DEVICE,TYPE,STATE", "device"], deadline)
        devices = parse_nmcli_devices(nm_text) if nm_text is not None else None
        access: list[str] | None = None
        maybe_modem = MODEM_NAME.match(device) is not None or any(d.type in MODEM_TYPES for d in devices or ())
        if maybe_modem:
            mm_text = _run(["mmcli", "-m", "any", "--output-keyvalue"], deadline)
            access = parse_mmcli_access(mm_text) if mm_text is not None else None
        return classify(device, devices, access)
    except Exception as exc:  # noqa: BLE001 - evidence is optional: a surprise here must never stop a test
        return DeviceNetwork(None, f"could not read the OS network state ({type(exc).__name__})")
