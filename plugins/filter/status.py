# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet status of netreach tunnels: a text table and a self-contained HTML report with an SVG topology."""

from __future__ import annotations

import datetime
import html

COLUMNS = ("host", "tunnel", "state", "uptime", "restarts", "failing forwards")
# Lines of the topology: green when up (or applied), red and dashed when down (or drifted).
EDGE_STYLE = {True: 'stroke="#2a7" stroke-width="2"', False: 'stroke="#d22" stroke-width="2" stroke-dasharray="6,4"'}


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
                         "server": "", "jump_hosts": [], "forwards": [], "last_error": ""})
            continue
        for tunnel in result.get("tunnels", []):
            failing = [f"{fwd['kind']} {fwd['listen']}: {fwd.get('probe')}" for fwd in tunnel.get("forwards", [])
                       if fwd.get("listening") is False or fwd.get("probe_ok") is False]
            rows.append({
                "host": host, "tunnel": tunnel["name"], "state": tunnel.get("state", "unknown"),
                "healthy": bool(tunnel.get("healthy")), "uptime": _uptime(tunnel.get("uptime_seconds")),
                "restarts": tunnel.get("restarts", 0), "failing": failing, "server": tunnel.get("server", ""),
                "jump_hosts": tunnel.get("jump_hosts", []), "forwards": tunnel.get("forwards", []),
                "last_error": tunnel.get("last_error", ""),
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
        elif result["changed"]:
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
                          row["uptime"], str(row["restarts"]), "; ".join(row["failing"]) or "-") for row in rows]
    widths = [max(len(str(line[i])) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(str(value).ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in cells]
    unknown = sum(1 for row in rows if row["tunnel"] == "-")
    down = sum(1 for row in rows if not row["healthy"]) - unknown
    summary = f"{len(rows) - unknown} tunnels, {down} down"
    return lines + [summary + (f", {unknown} hosts without a result" if unknown else "")]


def _box(cx, cy, name) -> str:
    return (f'<rect x="{cx - 90}" y="{cy - 16}" width="180" height="32" rx="6" fill="#eef" stroke="#557"/>'
            f'<text x="{cx}" y="{cy + 4}" text-anchor="middle">{html.escape(str(name)[:28])}</text>')


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
        for first, second in zip(path, path[1:]):
            edges.append((first, second, row["tunnel"], row["healthy"]))
        for fwd in row["forwards"]:
            if fwd.get("kind") == "local" and fwd.get("target"):
                # A target on the server's own loopback is that server's, not one shared box "localhost:PORT".
                target = fwd["target"]
                if target.rsplit(":", 1)[0].strip("[]") in ("localhost", "127.0.0.1", "::1"):
                    target = f"{row['server']}: {target}"
                place("target", target)
                edges.append((("server", row["server"]), ("target", target), f"-L {fwd['listen']}", row["healthy"]))
            elif fwd.get("kind") == "dynamic":
                place("target", "any (SOCKS)")
                edges.append((("server", row["server"]), ("target", "any (SOCKS)"), f"-D {fwd['listen']}", row["healthy"]))
            elif fwd.get("kind") == "remote":
                place("target", f"{row['host']}: {fwd.get('target')}")
                edges.append((("server", row["server"]), ("target", f"{row['host']}: {fwd.get('target')}"),
                              f"-R {fwd['listen']}", row["healthy"]))
    x = {"client": 110, "jump": 360, "server": 610, "target": 860}
    position = {(kind, name): (x[kind], 70 + 60 * index) for kind, names in columns.items() for index, name in enumerate(names)}
    base = 100 + 60 * max([len(names) for names in columns.values()] + [1])
    height = base + (60 + 60 * len(port_forwards) if port_forwards else 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="{height}" font-family="sans-serif" font-size="12">']
    for kind, title in (("client", "clients"), ("jump", "jump hosts"), ("server", "servers"), ("target", "targets")):
        parts.append(f'<text x="{x[kind]}" y="30" text-anchor="middle" font-weight="bold">{title}</text>')
    for (first, second, label, healthy) in edges:
        (x1, y1), (x2, y2) = position[first], position[second]
        parts.append(f'<line x1="{x1 + 90}" y1="{y1}" x2="{x2 - 90}" y2="{y2}" {EDGE_STYLE[bool(healthy)]}/>')
        parts.append(f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 4}" text-anchor="middle">'
                     f'{html.escape(label)}{"" if healthy else " (down)"}</text>')
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
                parts.append(f'<line x1="{x1 + 90}" y1="{y}" x2="{x2 - 90}" y2="{y}" {style}/>')
            parts.append(f'<text x="{(x["server"] + x["target"]) / 2}" y="{y - 4}" text-anchor="middle">DNAT'
                         f'{"" if healthy else " (" + html.escape(str(forward.get("state", "not applied"))) + ")"}</text>')
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
                                            html.escape(row["last_error"] or ""))) + "</tr>")
    down = sum(1 for row in rows if not row["healthy"])
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
        "padding:4px 8px}tr.down td{background:#fdd}b.down{color:#c00}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>", f"<p>{len(rows)} tunnels, {down} down; generated {now}.</p>",
        _svg(rows, port_forwards),
        "<table><tr>" + "".join(f"<th>{name}</th>" for name in COLUMNS + ("last error",)) + "</tr>",
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
