"""What `make demo` proved, as sentences grouped per capability, from the verify step's pytest lines in its log.

A test this table does not know yet is still listed (under "Other checks", its name made readable), so a new
test never disappears from the summary; a parametrized test (one per container) becomes one sentence with the
count of containers.

usage: python3 lab/scripts/demo_summary.py build/demo.log
"""
from __future__ import annotations

import re
import sys

# test name -> (capability, sentence); "{n}" is the number of containers a parametrized test ran on.
SENTENCES = {
    "test_news_banner_through_L12345_localhost_119":
        ("Persistent SSH tunnels", "The client read the news server's banner through its -L12345:localhost:119 "
                                   "tunnel, with the bastion as jump host."),
    "test_web_page_through_the_SOCKS_proxy_on_3128":
        ("Persistent SSH tunnels", "The client fetched newshost's web page through the SOCKS proxy on "
                                   "127.0.0.1:3128 (PuTTY's D3128)."),
    "test_web_page_through_the_corporate_HTTP_proxy_from_a_login_shell":
        ("Client proxy settings", "A login shell on the client fetched newshost's web page through the corporate "
                                  "HTTP proxy, which logged the request."),
    "test_gateway_DNAT_8080_brings_the_outside_to_newshosts_page_with_its_own_address":
        ("Gateway NAT and port forwards", "The outside host reached newshost's web page on the gateway's port 8080 "
                                          "(DNAT), and newshost saw the outside host's own address."),
    "test_gateway_masquerade_shows_the_gateways_address_to_the_outside":
        ("Gateway NAT and port forwards", "The news host reached the outside host with the gateway's address "
                                          "(masquerade)."),
    "test_gateway_forwards_nothing_undeclared_to_the_inside":
        ("Gateway NAT and port forwards", "The gateway forwarded no undeclared connection to the inside network "
                                          "(forward policy drop)."),
    "test_status_marks_a_gateway_whose_table_was_removed_and_the_gateway_playbook_puts_it_back":
        ("Fleet status", "status.yml marked the gateway's port forward as drifted once its table was removed, "
                         "and gateway.yml put the table back."),
    "test_status_playbook_reports_every_tunnel_up_and_writes_the_report":
        ("Fleet status", "status.yml reported every tunnel up and wrote the HTML report."),
    "test_the_captured_output_holds_the_verbose_converge":
        ("Secrets", "The converge's output was captured at -vvv with --diff for the audit."),
    "test_no_secret_in_the_captured_ansible_output":
        ("Secrets", "No password or private key line appeared in anything ansible printed."),
    "test_no_secret_in_the_journal_or_the_process_list":
        ("Secrets", "No secret appeared in the journal or the process list of any of the {n} lab containers."),
    "test_every_file_holding_a_secret_is_0600_and_owned_by_its_user":
        ("Secrets", "Every file holding a secret was 0600 and owned by its user, on each of the {n} lab "
                    "containers."),
}
ORDER = ["Persistent SSH tunnels", "Client proxy settings", "Gateway NAT and port forwards", "Fleet status",
         "Secrets", "Other checks"]
PASSED = re.compile(r"::(test_[A-Za-z0-9_]+)(?:\[([^\]]*)\])? PASSED")


def summary(log: str) -> list[str]:
    params: dict[str, set] = {}
    for match in PASSED.finditer(log):
        params.setdefault(match.group(1), set()).add(match.group(2))
    groups: dict[str, list[str]] = {}
    for name, seen in params.items():
        readable = name.removeprefix("test_").replace("_", " ")
        group, sentence = SENTENCES.get(name, ("Other checks", readable[:1].upper() + readable[1:] + "."))
        groups.setdefault(group, []).append(sentence.format(n=len(seen)))
    lines = []
    for group in ORDER:
        if group in groups:
            lines.append(f"  {group}:")
            lines.extend(f"    - {sentence}" for sentence in groups[group])
    return lines


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8", errors="replace") as handle:
        print("\n".join(summary(handle.read())))
