"""What the demo proves, with real clients on the demo lab: the seed recipes work end to end."""
from __future__ import annotations

import os
import re
import subprocess

import labtest

NEWS_BANNER = "200 netreach news ready"
PAGE = "netreach demo newshost page"


lab_host = labtest.host


def eventually(probe, timeout: float = 30.0) -> bool:
    return labtest.wait_until(probe, timeout) is not None


def test_news_banner_through_L12345_localhost_119():
    client = lab_host("client")
    assert eventually(lambda: NEWS_BANNER in client.run("nc -w 3 127.0.0.1 12345 </dev/null").stdout)


def test_web_page_through_the_SOCKS_proxy_on_3128():
    client = lab_host("client")
    assert eventually(lambda: PAGE in client.run(
        f"curl -s -m 5 --socks5-hostname 127.0.0.1:3128 http://{labtest.container('newshost')}/").stdout)


def test_web_page_through_the_corporate_HTTP_proxy_from_a_login_shell():
    client = lab_host("client")
    page = client.run(f"su - root -c 'curl -s -m 5 http://{labtest.container('newshost')}/'").stdout
    assert PAGE in page, "a login shell did not reach newshost through the proxy from the environment"
    log = lab_host("proxy").run("cat /var/log/tinyproxy/tinyproxy.log").stdout
    assert labtest.container("newshost") in log, "the proxy did not log the request"


def test_gateway_DNAT_8080_brings_the_outside_to_newshosts_page_with_its_own_address():
    outside = lab_host("outside")
    assert eventually(lambda: PAGE in outside.run("curl -s -m 5 http://10.77.1.254:8080/").stdout)
    seen = labtest.journal(lab_host("newshost"), "netreach-lab-web")
    assert "10.77.1.30 " in seen, "newshost did not see the outside host's own address"


def test_gateway_masquerade_shows_the_gateways_address_to_the_outside():
    page = lab_host("newshost").run("curl -s -m 5 http://10.77.1.30/").stdout
    assert "you are 10.77.1.254" in page, page


def test_gateway_forwards_nothing_undeclared_to_the_inside():
    # The outside host routes 10.77.2.0/24 via the gateway; only the declared DNAT may pass.
    outside = lab_host("outside")
    direct = outside.run("curl -s -m 3 -o /dev/null -w '%{http_code}' http://10.77.2.20:80/")
    assert direct.stdout in ("", "000") and direct.rc != 0, "the gateway forwarded an undeclared connection"
    assert outside.run("nc -z -w 3 10.77.2.20 119").rc != 0


def run_status(report: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "netreach.tunnels.status", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         "-e", f"status_report={report}"], capture_output=True, text=True, timeout=300, check=False)


def test_status_marks_a_gateway_whose_table_was_removed_and_the_gateway_playbook_puts_it_back(tmp_path):
    gateway = lab_host("gateway")
    assert gateway.run("nft delete table inet netreach").rc == 0
    try:
        completed = run_status(str(tmp_path / "drift.html"))
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
        assert re.search(r"demo-gateway +tcp 8080 on wan0 -> 10.77.2.20:80 +drifted", completed.stdout), completed.stdout[-3000:]
        assert '<tr class="down"><td>demo-gateway</td>' in (tmp_path / "drift.html").read_text(encoding="utf-8")
        assert lab_host("outside").run("curl -s -m 3 http://10.77.1.254:8080/").rc != 0, "DNAT without its table"
    finally:
        stats = labtest.run_playbook("netreach.tunnels.gateway")
    assert stats[labtest.container("gateway")]["changed"] > 0
    assert eventually(lambda: PAGE in lab_host("outside").run("curl -s -m 5 http://10.77.1.254:8080/").stdout)


def test_status_playbook_reports_every_tunnel_up_and_writes_the_report():
    report = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "build", "demo-status.html")
    completed = run_status(report)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    row = re.compile(r"^\s*- '?((host +tunnel .*)|(\S+ +\S+ +(active|activating|inactive|failed|deactivating).*)|"
                     r"(\d+ tunnels, \d+ down)|(gateway +forward +state)|(\S+ +(tcp|udp) \d.*))'?$")
    table = [match.group(1) for match in map(row.match, completed.stdout.splitlines()) if match]
    print("\nstatus table:\n" + "\n".join(table) + f"\nHTML report: {report}")
    assert "2 tunnels, 0 down" in completed.stdout, completed.stdout[-3000:]
    assert re.search(r"demo-gateway +tcp 8080 on wan0 -> 10.77.2.20:80 +applied", completed.stdout), completed.stdout[-3000:]
    page = open(report, encoding="utf-8").read()
    assert "<svg" in page and "gateway demo-gateway" in page
