"""The secrets audit of a lab scenario: what its secrets are, and where they must not show up.

Pure functions (no lab needed) so that tests/unit/molecule/test_audit.py can feed them a log holding a secret and
see them find it; molecule/_shared/test_secrets_audit.py applies them to every scenario's hosts and captured
ansible output.
"""
from __future__ import annotations

import base64
import re
import urllib.parse

# Inventory keys whose value is a secret: tunnels_proxy_password, password, api_token, client_secret, passphrase.
SECRET_KEY = re.compile(r"pass(word|wd|phrase)?$|secret|token|credential", re.IGNORECASE)
TEMPLATE = re.compile(r"{{|{%")
# Shorter secrets would match by chance: a lab secret is long enough that finding it means it leaked.
MIN_SECRET_LENGTH = 8
# Lines of a key's base64 body shorter than this (the last line of a PEM body) are too short to search for.
MIN_KEY_LINE = 20
PEM_BEGIN = re.compile(r"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----$")
PEM_END = re.compile(r"^-----END [A-Z0-9 ]*PRIVATE KEY-----$")


def secret_values(data, key: str = "") -> set[str]:
    """Every string under a key that names a secret, at any depth of DATA (inventory variables, YAML documents).

    Templates ("{{ tunnels_proxy_password }}") are left out: the variable they name is collected where it is set.
    """
    found: set[str] = set()
    if isinstance(data, dict):
        for name, value in data.items():
            found |= secret_values(value, str(name))
    elif isinstance(data, list):
        for value in data:
            found |= secret_values(value, key)
    elif isinstance(data, str) and data and SECRET_KEY.search(key) and not TEMPLATE.search(data):
        found.add(data)
    return found


def spellings(secret: str) -> set[str]:
    """The ways SECRET can show up in text: as it is, percent-encoded (proxy URLs) and base64-encoded."""
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret),
            base64.b64encode(secret.encode()).decode().rstrip("=")}


def key_material(text: str, public: str = "") -> list[str]:
    """The secret lines of a private key file: the base64 body of a PEM or OpenSSH key, the Private-Lines of a
    PuTTY key. Lines too short to be told apart from other base64 are left out, and so are lines that are part of
    PUBLIC (the key's .pub): an OpenSSH private key file holds its public key too, and a line of it that lines up
    with the .pub's base64 shows up, rightly, in known_hosts and authorized_keys. No lines at all if TEXT holds no
    private key."""
    lines = [line.strip() for line in text.splitlines()]
    body: list[str] = []
    inside = False
    for index, line in enumerate(lines):
        if PEM_BEGIN.match(line):
            inside = True
        elif PEM_END.match(line):
            inside = False
        elif inside and ":" not in line:  # PEM headers (Proc-Type: ...) are no key material
            body.append(line)
        elif line.startswith("Private-Lines:"):
            count = int(line.split(":", 1)[1])
            body += lines[index + 1:index + 1 + count]
    return [line for line in body if len(line) >= MIN_KEY_LINE and line not in public]


def is_private_key(text: str) -> bool:
    return any(PEM_BEGIN.match(line.strip()) for line in text.splitlines()) or text.startswith("PuTTY-User-Key-File-")


def find_leaks(text: str, needles: dict[str, str], where: str) -> list[str]:
    """Where in TEXT any needle shows up, with the line around it; NEEDLES maps a needle to what it is. A report
    never holds a needle (reports are read by people and land in CI logs): each is masked in the excerpt."""
    leaks = []
    for needle, what in needles.items():
        position = text.find(needle)
        if position >= 0:
            line = text.count("\n", 0, position) + 1
            start = text.rfind("\n", 0, position) + 1
            end = text.find("\n", position)
            excerpt = text[max(start, position - 150):end if end >= 0 else len(text)][:300]
            for other in needles:
                excerpt = excerpt.replace(other, "<secret>")
            leaks.append(f"{what} shows in {where} (line {line}: {excerpt})")
    return leaks


# client_proxy's local NTLM hop (auth ntlm): its configuration holds the NTLMv2 hash, as good as the password.
PROXY_HOP_DIR = "/etc/netreach/proxy-hop"
PROXY_HOP_USER = "netreach-proxy-hop"


def expected_owner(path: str, homes: dict[str, str], tunnel_users: dict[str, str], dir_group: str = "root") -> str:
    """Who must own a file that holds a secret: the NTLM hop's user for its configuration, the run_as user of the tunnel whose directory holds it (its unit's
    User, or for a tunnel without a unit any more the group ssh_tunnel gave its directory: root:run_as 0750), the
    user whose home holds it, root for everything else (system configuration)."""
    if path.startswith(PROXY_HOP_DIR + "/"):
        return PROXY_HOP_USER
    match = re.match(r"/etc/netreach/tunnels/([^/]+)/", path)
    if match:
        return tunnel_users.get(match.group(1), dir_group)
    for user, home in sorted(homes.items(), key=lambda item: -len(item[1])):
        if path.startswith(home.rstrip("/") + "/"):
            return user
    return "root"


def file_problems(files: list[dict], homes: dict[str, str], tunnel_users: dict[str, str],
                  lab_files: dict[str, str]) -> list[str]:
    """What is wrong with the files that hold a secret: each must be 0600 and owned by its expected owner.

    FILES: {path, mode, user, what, dir_group (group of the directory holding it)}. LAB_FILES: path -> why the lab (not the collection) keeps it otherwise (a lab
    daemon reading its config through its group); such a file must still be unreadable for others.
    """
    problems = []
    for item in files:
        path, mode = item["path"], item["mode"] & 0o7777
        if path in lab_files:
            if mode & 0o007:
                problems.append(f"{path} ({item['what']}) is a lab file but readable by others ({mode:o})")
            continue
        owner = expected_owner(path, homes, tunnel_users, item.get("dir_group", "root"))
        if mode != 0o600:
            problems.append(f"{path} holds {item['what']} but has mode {mode:o}, not 600")
        if item["user"] != owner:
            problems.append(f"{path} holds {item['what']} but is owned by {item['user']}, not {owner}")
    return problems
