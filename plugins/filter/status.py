# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet status of netreach tunnels: a text table and a self-contained HTML report with an SVG topology."""

from __future__ import annotations

import datetime
import html
import math

COLUMNS = ("host", "tunnel", "state", "uptime", "restarts", "failing forwards", "cause")
# Lines of the topology: green when up (or applied), red and dashed when down (or drifted).
EDGE_STYLE = {True: 'stroke="#2a7" stroke-width="2"', False: 'stroke="#d22" stroke-width="2" stroke-dasharray="6,4"'}
# The picture's font, and the advance widths (1/1000 em) of DejaVu Sans, Debian's default sans-serif and as wide as
# Verdana (Arial is narrower): labels are measured with them so that they fit their boxes.
FONT_FAMILY = "DejaVu Sans, Verdana, sans-serif"
CHAR_WIDTHS = dict(
    zip(" !\"#$%&'()*+,-./", (318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337)),
    **dict.fromkeys("0123456789", 636), **dict(zip(":;<=>?@", (337, 337, 838, 838, 838, 531, 1000))),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748,
                                              787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685))),
    **dict(zip("[\\]^_`{|}~", (390, 337, 390, 838, 500, 500, 636, 337, 636, 838))),
    **dict(zip("abcdefghijklmnopqrstuvwxyz", (613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634,
                                              612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525))),
)
WIDEST = 1000  # any other character (non-ASCII) is measured as wide as the widest
LINE_HEIGHT = 1.2
MAX_FONT = 12.0
MIN_FONT = 8.0
# Where a label may break: after a space, a colon, a dash, an underscore, a dot or a slash.
BREAKS = " :-_./"
# The topology's columns (x of each box's centre), its boxes (width, height) and the padding inside a box.
COLUMN_X = {"client": 110, "jump": 400, "server": 690, "target": 980}
BOX_WIDTH = 180
BOX_HEIGHT = 32
PADDING = 6


def _uptime(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}d{hours:02}h" if days else f"{hours}h{minutes:02}m" if hours else f"{minutes}m{seconds:02}s"


def tunnel_status_rows(hostvars, hosts: list, variable: str = "status_tunnels") -> list[dict]:
    """One row per tunnel, from the registered tunnel_info result VARIABLE of each of HOSTS that has one."""
    rows = []
    for host in sorted(set(hosts)):
        result = hostvars[host].get(variable) if host in hostvars else None
        if not isinstance(result, dict) or "tunnels" not in result:
            # Targeted but no result: unreachable, or tunnel_info failed there.
            rows.append({"host": host, "tunnel": "-", "state": "unknown (no result)", "healthy": False,
                         "uptime": "-", "restarts": 0, "failing": [str((result or {}).get("msg", "host unreachable"))[:120]],
                         "server": "", "jump_hosts": [], "forwards": [], "cause": "", "last_error": "",
                         "warnings": []})
            continue
        for tunnel in result.get("tunnels", []):
            failing = [f"{fwd['kind']} {fwd['listen']}: {fwd.get('probe')}" for fwd in tunnel.get("forwards", [])
                       if fwd.get("listening") is False or fwd.get("probe_ok") is False]
            rows.append({
                "host": host, "tunnel": tunnel["name"], "state": tunnel.get("state", "unknown"),
                "healthy": bool(tunnel.get("healthy")), "uptime": _uptime(tunnel.get("uptime_seconds")),
                "restarts": tunnel.get("restarts", 0), "failing": failing, "server": tunnel.get("server", ""),
                "jump_hosts": tunnel.get("jump_hosts", []), "forwards": tunnel.get("forwards", []),
                "cause": tunnel.get("cause", ""), "last_error": tunnel.get("last_error", ""),
                "warnings": tunnel.get("warnings", []),
            })
    return rows


def gateway_forward_rows(hostvars, hosts: list, variable: str = "gateway_result") -> list[dict]:
    """One row per declared port forward (gateway_port_forwards) of each of HOSTS, with whether the kernel's
    table matched the declaration: the registered check-mode result VARIABLE of the gateway role."""
    rows = []
    for host in sorted(set(hosts)):
        if host not in hostvars:
            continue
        result = hostvars[host].get(variable)
        if isinstance(result, dict) and result.get("failed") and result.get("field") == "foreign_drop":
            # nat_rules refuses a declaration that another table would drop: the flows are dead there.
            state, in_sync = "drifted (another table drops the declared flows)", False
        elif not isinstance(result, dict) or "changed" not in result or result.get("failed"):
            state, in_sync = "unknown (no result)", False
        elif result.get("flows_changed", result["changed"]):
            # A pending change of the metrics timer alone is not drift: the flows are as declared.
            state, in_sync = "drifted (a run would change the table)", False
        else:
            state, in_sync = "applied", True
        for forward in hostvars[host].get("gateway_port_forwards") or []:
            rows.append({"gateway": host, "proto": forward.get("proto", "tcp"), "port": str(forward.get("port")),
                         "to": str(forward.get("to")), "in_interface": forward.get("in_interface") or "",
                         "state": state, "in_sync": in_sync})
    return rows


def _forward_port(forward: dict) -> str:
    """What a port forward listens for: `tcp 8080 on wan0`."""
    interface = f" on {forward['in_interface']}" if forward.get("in_interface") else ""
    return f"{forward.get('proto', 'tcp')} {forward.get('port')}{interface}"


def gateway_forward_table(rows: list) -> list[str]:
    """Text lines for the gateways' port forwards, or none without gateways."""
    if not rows:
        return []
    cells = [("gateway", "forward", "state")] + [
        (row["gateway"], f"{_forward_port(row)} -> {row['to']}", row["state"]) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(3)]
    return ["  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in cells]


def tunnel_status_table(rows: list) -> list[str]:
    cells = [COLUMNS] + [(row["host"], row["tunnel"], row["state"] + ("" if row["healthy"] else " (DOWN)"),
                          row["uptime"], str(row["restarts"]), "; ".join(row["failing"]) or "-",
                          _cause(row) or "-") for row in rows]
    widths = [max(len(str(line[i])) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(str(value).ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in cells]
    unknown = sum(1 for row in rows if row["tunnel"] == "-")
    down = sum(1 for row in rows if not row["healthy"]) - unknown
    summary = f"{len(rows) - unknown} tunnels, {down} down"
    return lines + [summary + (f", {unknown} hosts without a result" if unknown else "")]


def _cause(row: dict) -> str:
    """A down tunnel's cause as tunnel_info named it (`host_key_mismatch` reads `host key mismatch`)."""
    return str(row.get("cause") or "").replace("_", " ")


def text_width(text: str, size: float) -> float:
    """Width in pixels of TEXT set in the picture's font at SIZE pixels."""
    return sum(CHAR_WIDTHS.get(char, WIDEST) for char in text) * size / 1000


def _split(text: str) -> tuple[str, str]:
    """TEXT in two lines at the break that makes the longer line shortest."""
    candidates = [(text[:index + 1].rstrip(), text[index + 1:].lstrip()) for index, char in enumerate(text[:-1])
                  if char in BREAKS] or [(text[:len(text) // 2], text[len(text) // 2:])]
    return min(candidates, key=lambda pair: max(text_width(pair[0], 1), text_width(pair[1], 1)))


def fit_label(text: str, width: float, height: float) -> tuple[float, list[str]]:
    """Font size and lines so that TEXT fits a WIDTH x HEIGHT box: one line or two (broken at BREAKS), whichever
    allows the larger size, at most MAX_FONT; a label too long even at MIN_FONT is squeezed by _label (SVG
    textLength), never cut."""
    one = min(MAX_FONT, width / max(1e-9, text_width(text, 1)), height / LINE_HEIGHT)
    if one >= MAX_FONT or len(text) < 2:
        return _size(one), [text]
    lines = list(_split(text))
    two = min(MAX_FONT, width / max(1e-9, max(text_width(line, 1) for line in lines)), height / (2 * LINE_HEIGHT))
    return (_size(one), [text]) if one >= two else (_size(two), lines)


def _size(size: float) -> float:
    """SIZE rounded down to what the picture prints (1/100 px), at least MIN_FONT."""
    return max(math.floor(size * 100) / 100, MIN_FONT)


def _label(cx: float, top: float, text: str, width: float, height: float, attributes: str = "") -> str:
    """A <text> of one or two lines, centred on CX from TOP, that fits WIDTH x HEIGHT (the full text as its
    tooltip)."""
    size, lines = fit_label(text, width, height)
    parts = [f'<text class="label" x="{cx}" y="{top:.1f}" font-size="{size:.2f}" text-anchor="middle" '
             f'data-width="{width:.2f}" data-height="{height:.2f}"{attributes}><title>{html.escape(text)}</title>']
    for index, line in enumerate(lines):
        squeeze = ""
        if text_width(line, size) > width:
            squeeze = f' textLength="{width:.1f}" lengthAdjust="spacingAndGlyphs"'
        parts.append(f'<tspan x="{cx}" dy="{size if index == 0 else size * LINE_HEIGHT:.1f}"{squeeze}>'
                     f'{html.escape(line)}</tspan>')
    return "".join(parts) + "</text>"


def _box(cx, cy, name) -> str:
    name = str(name)
    size, lines = fit_label(name, BOX_WIDTH - 2 * PADDING, BOX_HEIGHT - 4)
    top = cy - size * LINE_HEIGHT * len(lines) / 2 - size * 0.1
    return (f'<rect x="{cx - BOX_WIDTH / 2}" y="{cy - BOX_HEIGHT / 2}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" '
            f'rx="6" fill="#eef" stroke="#557"/>'
            + _label(cx, top, name, BOX_WIDTH - 2 * PADDING, BOX_HEIGHT - 4))


def _edge_label(first, second, label: str, below: float = 0) -> tuple[str, float]:
    """The label of an edge between the boxes at FIRST and SECOND (centres), fitted to the gap between the boxes,
    its bottom BELOW pixels above the edge's middle (the labels of one pair of boxes stack); and its height."""
    (x1, y1), (x2, y2) = first, second
    gap = abs(x2 - x1) - BOX_WIDTH - 2 * PADDING
    size, lines = fit_label(label, gap, 2 * MIN_FONT * LINE_HEIGHT)
    height = size * LINE_HEIGHT * len(lines)
    return _label((x1 + x2) / 2, (y1 + y2) / 2 - 3 - below - height, label, gap, height), height


def _down(row: dict) -> str:
    return "" if row["healthy"] else " (down)"


def _svg(rows: list, port_forwards: list) -> str:
    """Columns: clients -> jump hosts -> servers -> targets; gateway port forwards below."""
    columns = {"client": [], "jump": [], "server": [], "target": []}

    def place(kind, name):
        if name not in columns[kind]:
            columns[kind].append(name)

    edges = []
    for row in rows:
        place("client", row["host"])
        path = [("client", row["host"])] + [("jump", jump) for jump in row["jump_hosts"]] + [("server", row["server"])]
        for kind, name in path[1:]:
            place(kind, name)
        for index, (first, second) in enumerate(zip(path, path[1:])):
            label = row["tunnel"]
            if not row["healthy"]:
                label += f" (down: {_cause(row)})" if index == 0 and _cause(row) else " (down)"
            edges.append((first, second, label, row["healthy"]))
        for fwd in row["forwards"]:
            if fwd.get("kind") == "local" and fwd.get("target"):
                # A target on the server's own loopback is that server's, not one shared box "localhost:PORT".
                target = fwd["target"]
                if target.rsplit(":", 1)[0].strip("[]") in ("localhost", "127.0.0.1", "::1"):
                    target = f"{row['server']}: {target}"
                place("target", target)
                edges.append((("server", row["server"]), ("target", target), f"-L {fwd['listen']}" + _down(row), row["healthy"]))
            elif fwd.get("kind") == "dynamic":
                place("target", "any (SOCKS)")
                edges.append((("server", row["server"]), ("target", "any (SOCKS)"), f"-D {fwd['listen']}" + _down(row), row["healthy"]))
            elif fwd.get("kind") == "remote":
                place("target", f"{row['host']}: {fwd.get('target')}")
                edges.append((("server", row["server"]), ("target", f"{row['host']}: {fwd.get('target')}"),
                              f"-R {fwd['listen']}" + _down(row), row["healthy"]))
    x = COLUMN_X
    position = {(kind, name): (x[kind], 70 + 60 * index) for kind, names in columns.items() for index, name in enumerate(names)}
    base = 100 + 60 * max([len(names) for names in columns.values()] + [1])
    height = base + (60 + 60 * len(port_forwards) if port_forwards else 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{x["target"] + BOX_WIDTH / 2 + 20}" height="{height}" '
             f'font-family="{FONT_FAMILY}" font-size="{MAX_FONT:g}">']
    for kind, title in (("client", "clients"), ("jump", "jump hosts"), ("server", "servers"), ("target", "targets")):
        parts.append(f'<text x="{x[kind]}" y="30" text-anchor="middle" font-weight="bold">{title}</text>')
    stacked: dict = {}
    for (first, second, label, healthy) in edges:
        (x1, y1), (x2, y2) = position[first], position[second]
        parts.append(f'<line x1="{x1 + BOX_WIDTH / 2}" y1="{y1}" x2="{x2 - BOX_WIDTH / 2}" y2="{y2}" {EDGE_STYLE[bool(healthy)]}/>')
        text, height = _edge_label(position[first], position[second], label, stacked.get((first, second), 0))
        stacked[(first, second)] = stacked.get((first, second), 0) + height
        parts.append(text)
    for (kind, name), (cx, cy) in position.items():
        parts.append(_box(cx, cy, name))
    if port_forwards:
        # Gateway port forwards: connections to the gateway's port -> the gateway -> the inside target.
        parts.append(f'<text x="20" y="{base + 10}" font-weight="bold">gateway port forwards: '
                     'connections to the port -> gateway -> target</text>')
        for index, forward in enumerate(port_forwards):
            y = base + 50 + 60 * index
            healthy = forward.get("in_sync", True)
            style = EDGE_STYLE[bool(healthy)]
            for (x1, x2) in ((x["client"], x["server"]), (x["server"], x["target"])):
                parts.append(f'<line x1="{x1 + BOX_WIDTH / 2}" y1="{y}" x2="{x2 - BOX_WIDTH / 2}" y2="{y}" {style}/>')
            label = "DNAT" + ("" if healthy else f" ({forward.get('state', 'not applied')})")
            parts.append(_edge_label((x["server"], y), (x["target"], y), label)[0])
            parts.extend((_box(x["client"], y, _forward_port(forward)), _box(x["server"], y, f"gateway {forward.get('gateway')}"),
                          _box(x["target"], y, str(forward.get("to")))))
    parts.append("</svg>")
    return "\n".join(parts)


def _forward_table(port_forwards: list) -> list[str]:
    if not port_forwards:
        return []
    lines = ["<h2>gateway port forwards</h2>", "<table><tr><th>gateway</th><th>forward</th><th>to</th><th>state</th></tr>"]
    for forward in port_forwards:
        healthy = forward.get("in_sync", True)
        lines.append("<tr" + ("" if healthy else ' class="down"') + ">" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in (
            forward.get("gateway"), _forward_port(forward), forward.get("to"),
            forward.get("state", "declared"))) + "</tr>")
    return lines + ["</table>"]


def tunnel_status_html(rows: list, port_forwards: list | None = None, title: str = "netreach tunnels") -> str:
    """A self-contained page: the table, the topology (SVG, inline), no external resources."""
    port_forwards = port_forwards or []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = []
    for row in rows:
        state = html.escape(row["state"]) + ("" if row["healthy"] else ' <b class="down">DOWN</b>')
        body.append("<tr" + ("" if row["healthy"] else ' class="down"') + ">" + "".join(
            f"<td>{cell}</td>" for cell in (html.escape(row["host"]), html.escape(row["tunnel"]), state,
                                            html.escape(row["uptime"]), str(int(row["restarts"])),
                                            html.escape("; ".join(row["failing"]) or "-"),
                                            html.escape(_cause(row) or "-"), html.escape(row["last_error"] or ""),
                                            html.escape("; ".join(row.get("warnings") or [])))) + "</tr>")
    down = sum(1 for row in rows if not row["healthy"])
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
        "padding:4px 8px}tr.down td{background:#fdd}b.down{color:#c00}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>", f"<p>{len(rows)} tunnels, {down} down; generated {now}.</p>",
        _svg(rows, port_forwards),
        "<table><tr>" + "".join(f"<th>{name}</th>" for name in COLUMNS + ("last error", "warnings")) + "</tr>",
        *body, "</table>", *_forward_table(port_forwards), "</body></html>", "",
    ])


class FilterModule:
    def filters(self):
        return {
            "tunnel_status_rows": tunnel_status_rows,
            "tunnel_status_table": tunnel_status_table,
            "tunnel_status_html": tunnel_status_html,
            "gateway_forward_rows": gateway_forward_rows,
            "gateway_forward_table": gateway_forward_table,
        }
