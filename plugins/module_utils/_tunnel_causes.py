# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: why a tunnel is down, from its own journal. Not a public API.
"""Why a tunnel is not up, read from the lines ssh and our proxy helper printed, never systemd's bookkeeping.

A tunnel's unit makes its attempts in one start: its starter (tunnel-start) runs ssh again whenever it ends, and
prints RESTART_MARK after each attempt; ssh's stderr (and the proxy helper's, which inherits it) carries the journal
field _SYSTEMD_INVOCATION_ID of that start. `attempts()` groups the journal's entries by it and by the marks;
`diagnose()` classifies the lines of one attempt: the first cause of CAUSES (most specific first) that a line
matches is the attempt's cause, with that line as its error; lines that are not fatal (the IPv6 loopback a
container lacks, a channel the server refused) are warnings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_start import RESTART_MARK

# (kind, pattern) in order of precedence: a proxy refusal comes before ssh's "Connection closed" that follows it;
# a first hop's refusal before the "kex_exchange_identification" the next hop prints about it.
CAUSES = (
    ("proxy_refused", re.compile(r"^proxy-connect: the (?:SOCKS5 )?proxy (?:refused|rejected|offers no usable)")),
    ("proxy_unreachable", re.compile(r"^proxy-connect: (?:cannot reach the proxy|the proxy closed the connection)")),
    ("host_key_mismatch", re.compile(r"^Host key for \S+ has changed")),
    ("host_key_unknown", re.compile(r"^No \S+ host key is known for ")),
    ("host_key_rejected", re.compile(r"^Host key verification failed")),
    ("permission_denied", re.compile(r": Permission denied \([^)]*\)")),
    ("remote_forward_refused", re.compile(r"^(?:Error|Warning): remote port forwarding failed for listen port")),
    ("local_forward_failed", re.compile(r"^(?:Error: )?Could not request local forwarding|cannot listen to port: \d+")),
    ("name_unresolved", re.compile(r"Could not resolve hostname \S+: ")),
    ("connection_refused", re.compile(r"connect to host \S+ port \d+: Connection refused")),
    ("connection_timed_out", re.compile(r"connect to host \S+ port \d+: (?:Connection timed out|No route to host|"
                                        r"Network is unreachable)|Connection timed out during banner exchange")),
    ("connection_lost", re.compile(r"^Timeout, server \S+ not responding|^client_loop: send disconnect")),
    ("connection_closed", re.compile(r"^kex_exchange_identification: |^Connection (?:closed|reset) by ")),
)
CAUSE_KINDS = tuple(kind for kind, _pattern in CAUSES) + ("other",)
# Lines that say something went wrong without ending the tunnel (ExitOnForwardFailure makes ssh exit on the rest).
WARNING_RE = re.compile(r"^bind \S+: |^channel \d+: open failed|^connect_to \S+ port \d+: failed|^Warning: ")
# Any other line that looks like a failure: the fallback when none of CAUSES matches.
ERROR_RE = re.compile(r"(error|fail|denied|refused|timed out|timeout|unreachable|closed|verification|"
                      r"no route|could not|cannot|not known)", re.IGNORECASE)
# ssh -v and higher; what they say is repeated by the plain lines.
DEBUG_RE = re.compile(r"^debug\d: ")
MAX_LINE = 300


@dataclass
class Diagnosis:
    cause: str = ""
    last_error: str = ""
    warnings: list = field(default_factory=list)


def classify(line: str) -> str:
    """The cause kind a single line states ("" for none)."""
    for kind, pattern in CAUSES:
        if pattern.search(line):
            return kind
    return ""


def diagnose(lines: list[str], healthy: bool) -> Diagnosis:
    """The cause of one attempt's LINES; a HEALTHY tunnel has none, whatever it printed: its lines are warnings."""
    lines = [line.strip()[:MAX_LINE] for line in lines if line.strip() and not DEBUG_RE.match(line.strip())]
    if healthy:
        return Diagnosis(warnings=_unique(line for line in lines if WARNING_RE.search(line) or ERROR_RE.search(line)))
    found = {}
    for line in lines:
        found.setdefault(classify(line), line)
    cause = next((kind for kind, _pattern in CAUSES if kind in found), "")
    if cause:
        error = found[cause]
    else:
        error = next((line for line in reversed(lines) if ERROR_RE.search(line) and not WARNING_RE.search(line)), "")
        cause = "other" if error else ""
    return Diagnosis(cause, error, _unique(line for line in lines if WARNING_RE.search(line) and line != error))


def _unique(lines) -> list[str]:
    return list(dict.fromkeys(lines))


def _message(entry: dict) -> str:
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journalctl prints a message that is not UTF-8 as its bytes
        message = bytes(value for value in message if isinstance(value, int) and 0 <= value < 256).decode(errors="replace")
    return str(message)


def attempts(journal_json: str) -> list[tuple[str, list[str]]]:
    """(invocation id, lines) of each attempt, oldest first, from `journalctl -o json`: only what the unit's
    processes wrote (stdout/stderr), never what systemd logged about the unit. A start's attempts are split at the
    starter's RESTART_MARK lines (which are none of the lines): the attempt after the last mark may have no lines
    yet."""
    found: list[tuple[str, list[str]]] = []
    current: dict[str, list[str]] = {}  # invocation -> the lines of its latest attempt
    for text in journal_json.splitlines():
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("_TRANSPORT") != "stdout":
            continue
        invocation, message = str(entry.get("_SYSTEMD_INVOCATION_ID", "")), _message(entry)
        marked = message.startswith(RESTART_MARK)
        if marked or invocation not in current:
            current[invocation] = []
            found.append((invocation, current[invocation]))
        if not marked:
            current[invocation].append(message)
    return found


def tunnel_diagnosis(journal_json: str, invocation: str, healthy: bool) -> Diagnosis:
    """Why the tunnel is (not) up. A healthy tunnel: the warnings of its current attempt (the last of start
    INVOCATION). Otherwise the last attempt that printed anything: the current one, or while it waits out its
    backoff or connects, the one before it."""
    started = attempts(journal_json)
    if healthy:
        return diagnose(dict(started).get(invocation, []), healthy=True)
    printed = [lines for _invocation, lines in started if lines]
    return diagnose(printed[-1], healthy=False) if printed else Diagnosis()
