"""The topology pictures of the docs site's guides, drawn by the collection's own status report.

Each guide walks one seed scenario; its picture is what `playbooks/status.yml` draws for that scenario's fleet
when every tunnel is up: the rows below are what tunnel_status_rows makes of tunnel_info results, and the
picture is the SVG that tunnel_status_html embeds in its report. Drawing them here (not committing SVG files)
keeps the pictures in step with the report.

usage: python3 lab/scripts/docs_topology.py COLLECTION_ROOT OUTPUT_DIR
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import sys


def tunnel(host, name, server, forwards, jump_hosts=()):
    return {"host": host, "tunnel": name, "state": "active", "healthy": True, "uptime": "1h2m", "restarts": 0,
            "failing": [], "server": server, "jump_hosts": list(jump_hosts), "forwards": forwards, "last_error": ""}


def local(listen, target):
    return {"kind": "local", "listen": listen, "target": target, "listening": True, "probe_ok": True}


def dynamic(listen):
    return {"kind": "dynamic", "listen": listen, "listening": True, "probe_ok": True}


# guide page -> (tunnel rows, gateway port forward rows)
SCENARIOS = {
    "guide_tunnel_through_proxy": (
        [tunnel("laptop1", "news", "newshost", [local("127.0.0.1:12345", "localhost:119")],
                jump_hosts=["tunnel@bastion:22"])], []),
    "guide_socks_d3128": (
        [tunnel("laptop1", "socks", "bastion", [dynamic("127.0.0.1:3128")])], []),
    "guide_gateway_nat": (
        [], [{"gateway": "gateway", "proto": "tcp", "port": "8080", "to": "10.10.0.5:80", "in_interface": "eth0",
              "state": "applied", "in_sync": True}]),
    "guide_permanent_local_forward": (
        [tunnel("laptop1", "news", "newshost", [local("127.0.0.1:12345", "localhost:119")])], []),
}


def main(collection_root: str, output_dir: str) -> None:
    spec = importlib.util.spec_from_file_location("netreach_status", pathlib.Path(collection_root, "plugins/filter/status.py"))
    status = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(status)
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for page, (rows, port_forwards) in SCENARIOS.items():
        report = status.tunnel_status_html(rows, port_forwards)
        svg = re.search(r"<svg .*?</svg>", report, re.S)
        if not svg:
            sys.exit(f"{page}: the status report drew no SVG")
        (out / f"topology-{page.removeprefix('guide_')}.svg").write_text(svg.group(0) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
