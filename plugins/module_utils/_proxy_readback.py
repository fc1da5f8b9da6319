# Copyright: netreach developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of netreach.tunnels: the proxy model's parse-back. Not a public API.
"""What each consumer's own tool prints about its proxy (systemctl show-environment, apt-config dump, git config,
npm config get, pip config list), parsed back and compared with what the model rendered: pure functions."""

from __future__ import annotations

import ast
import re

from ansible_collections.netreach.tunnels.plugins.module_utils._proxy import ProxySettings


def expected_readbacks(settings: ProxySettings) -> dict[str, dict[str, str]]:
    """Per layer, the settings its consumer must report after we wrote it (name as that tool names it)."""
    first = settings.http or settings.https or settings.socks
    apt = {f"Acquire::{scheme}::Proxy": settings.url(proxy)
           for scheme, proxy in (("http", settings.http), ("https", settings.https or settings.http)) if proxy}
    npm = {key: settings.url(proxy)
           for key, proxy in (("proxy", settings.http), ("https-proxy", settings.https or settings.http)) if proxy}
    return {"systemd": dict(settings.env), "apt": apt, "git": {"http.proxy": settings.git_url(first)},
            "pip": {"global.proxy": settings.url(first)}, "npm": npm}


def parse_show_environment(text: str) -> dict[str, str]:
    """`systemctl show-environment`: NAME=value, or NAME=$'value' (ANSI-C quoting) when the value holds a
    character special to the shell."""
    env = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep:
            continue
        if value.startswith("$'") and value.endswith("'") and len(value) >= 3:
            value = _ansi_c_unquote(value[2:-1])
        env[name] = value
    return env


ANSI_C = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "v": "\v"}


def _ansi_c_unquote(text: str) -> str:
    """The body of a $'...' string: backslash escapes (\\n, \\xHH, \\NNN octal, \\' ...) decoded."""
    def one(match: re.Match) -> str:
        code = match.group(1)
        if code[0] == "x" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        return ANSI_C.get(code, code)
    return re.sub(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", one, text)


def parse_apt_dump(text: str) -> dict[str, str]:
    """`apt-config dump`: one `Name "value";` per line."""
    values = {}
    for line in text.splitlines():
        match = re.match(r'^(\S+) "(.*)";$', line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def parse_pip_config_list(text: str) -> dict[str, str]:
    """`pip config list`: key='value' per line, the value as Python's repr() writes a string."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        try:
            parsed = ast.literal_eval(value) if sep else None
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, str):
            values[key] = parsed
    return values


def readback_problem(expected: dict[str, str], seen: dict[str, str | None]) -> str | None:
    """What the consumer sees differently from EXPECTED, or None."""
    wrong = [f"{name} is {seen.get(name)!r}, not {value!r}" for name, value in expected.items()
             if seen.get(name) != value]
    return "; ".join(wrong) or None


def parse_key_lines(text: str) -> dict[str, str]:
    """`npm config get KEY...`: key=value per line (npm prints the bare value when asked for one key only)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values
