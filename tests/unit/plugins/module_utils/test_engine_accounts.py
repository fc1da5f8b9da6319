"""The engine's account step (Plan.locked_account) against a fake root whose etc/passwd, etc/shadow and etc/group a
fake useradd and usermod edit: check mode, diff, idempotence, the validated name, the lock of an existing system
account, the refusal of an ordinary one, and the read-back after the command."""
from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from fakehost import Failed, FakeModule, snapshot

NOLOGIN = "/usr/sbin/nologin"


class Accounts:
    """The fake root's account files and the useradd/usermod that change them, as shadow-utils does."""

    def __init__(self, root, uid_min: int = 1000) -> None:
        self.etc = root / "etc"
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        (self.etc / "shadow").write_text("root:$6$rootpw:20000:0:99999:7:::\n")
        (self.etc / "group").write_text("root:x:0:\n")
        (self.etc / "login.defs").write_text(f"MAIL_DIR /var/mail\nUID_MIN\t\t\t {uid_min}\nUID_MAX 60000\n")
        self.next_uid = 990

    def add(self, name: str, uid: int, shell: str, password: str, home: str | None = None) -> None:
        with open(self.etc / "passwd", "a", encoding="utf-8") as stream:
            stream.write(f"{name}:x:{uid}:{uid}::{home or '/home/' + name}:{shell}\n")
        with open(self.etc / "shadow", "a", encoding="utf-8") as stream:
            stream.write(f"{name}:{password}:20000::::::\n")

    def line(self, name: str, file: str = "passwd") -> list[str]:
        return next(line.split(":") for line in (self.etc / file).read_text().splitlines() if line.startswith(f"{name}:"))

    def useradd(self, args: list[str]):
        (self.etc.parent / args[args.index("--home-dir") + 1].lstrip("/")).mkdir(parents=True, exist_ok=True)
        self.add(args[-1], self.next_uid, args[args.index("--shell") + 1], "!", args[args.index("--home-dir") + 1])
        return 0, "", ""

    def usermod(self, args: list[str]):
        name = args[-1]
        for file, position, change in (("passwd", 6, "--shell"), ("shadow", 1, "--lock")):
            lines = []
            for line in (self.etc / file).read_text().splitlines():
                fields = line.split(":")
                if fields[0] == name and change in args:
                    fields[position] = args[args.index(change) + 1] if change == "--shell" else "!" + fields[1]
                lines.append(":".join(fields))
            (self.etc / file).write_text("\n".join(lines) + "\n")
        return 0, "", ""

    def answers(self) -> dict:
        return {("useradd",): self.useradd, ("usermod",): self.usermod}


def run(tmp_path, accounts: Accounts, name: str = "tunnel", check: bool = False, answers: dict | None = None):
    module = FakeModule(tmp_path, check_mode=check, answers=answers or accounts.answers())
    plan = Plan(module)
    changed = plan.locked_account(name, "accounts")
    return changed, plan.commit(), module


def test_a_new_account_is_reported_in_check_mode_then_created_locked_and_shell_less_once(tmp_path):
    accounts = Accounts(tmp_path)
    before = snapshot(str(tmp_path))
    changed, checked, module = run(tmp_path, accounts, check=True)
    assert changed and checked["changed"] and module.commands == [] and snapshot(str(tmp_path)) == before
    assert checked["diff"] == {"before": "", "after": "# account tunnel: created, locked, shell /usr/sbin/nologin, "
                                                      "home /home/tunnel\n"}
    _changed, applied, module = run(tmp_path, accounts)
    assert applied["changed"] and applied["diff"] == checked["diff"]
    assert module.commands == [["useradd", "--system", "--user-group", "--create-home", "--home-dir", "/home/tunnel",
                                "--shell", NOLOGIN, "tunnel"]]
    assert accounts.line("tunnel")[6] == NOLOGIN and accounts.line("tunnel", "shadow")[1] == "!"
    for check in (True, False):
        changed, again, module = run(tmp_path, accounts, check=check)
        assert not changed and not again["changed"] and module.commands == []
        assert again["diff"] == {"before": "", "after": ""}


def test_a_new_account_joins_the_group_of_its_name_when_that_exists(tmp_path):
    accounts = Accounts(tmp_path)
    with open(accounts.etc / "group", "a", encoding="utf-8") as stream:
        stream.write("tunnel:x:995:\n")
    _changed, _result, module = run(tmp_path, accounts)
    assert module.commands[0][:4] == ["useradd", "--system", "--gid", "tunnel"]


@pytest.mark.parametrize(("shell", "password", "args", "said"), [
    ("/bin/bash", "$6$usable", ["--shell", NOLOGIN, "--lock"], f"shell /bin/bash -> {NOLOGIN}, password locked"),
    (NOLOGIN, "*", ["--lock"], "password locked"),
    ("/bin/sh", "!", ["--shell", NOLOGIN], f"shell /bin/sh -> {NOLOGIN}"),
])
def test_an_existing_system_account_that_could_log_in_is_brought_to_the_locked_state(tmp_path, shell, password, args,
                                                                                     said):
    accounts = Accounts(tmp_path)
    accounts.add("tunnel", 991, shell, password)
    before = snapshot(str(tmp_path))
    _changed, checked, module = run(tmp_path, accounts, check=True)
    assert checked["changed"] and module.commands == [] and snapshot(str(tmp_path)) == before
    locked = "locked" if password.startswith("!") else "usable"
    assert checked["diff"] == {"before": f"# account tunnel: uid 991, home /home/tunnel, shell {shell}, password {locked}\n",
                               "after": f"# account tunnel: existing, brought to the locked state: {said}\n"}
    _changed, applied, module = run(tmp_path, accounts)
    assert applied["changed"] and module.commands == [["usermod", *args, "tunnel"]]
    assert accounts.line("tunnel")[6] == NOLOGIN and accounts.line("tunnel", "shadow")[1].startswith("!")
    changed, again, module = run(tmp_path, accounts)
    assert not changed and not again["changed"] and module.commands == []


@pytest.mark.parametrize(("uid", "uid_min"), [(1000, 1000), (1001, 1000), (0, 1000), (1500, 1500)])
def test_an_existing_ordinary_account_is_refused_naming_the_field_and_nothing_runs(tmp_path, uid, uid_min):
    accounts = Accounts(tmp_path, uid_min=uid_min)
    accounts.add("alice", uid, "/bin/bash", "$6$alicepw")
    before = snapshot(str(tmp_path))
    module = FakeModule(tmp_path, answers=accounts.answers())
    with pytest.raises(Failed) as failure:
        Plan(module).locked_account("alice", "accounts")
    assert failure.value.result["field"] == "accounts" and "ordinary account" in failure.value.result["msg"]
    assert f"uid {uid}" in failure.value.result["msg"] and module.commands == [] and snapshot(str(tmp_path)) == before


def test_the_system_range_comes_from_login_defs(tmp_path):
    accounts = Accounts(tmp_path, uid_min=2000)
    accounts.add("tunnel", 1500, "/bin/bash", "$6$pw")
    _changed, result, module = run(tmp_path, accounts)
    assert result["changed"] and module.commands[0][0] == "usermod"


@pytest.mark.parametrize("name", ["root", "", "Tunnel", "a b", "-oops", "a:b", "a\nb", "x" * 33, None, 7])
def test_a_bad_name_is_refused_naming_the_field_before_anything_runs(tmp_path, name):
    accounts = Accounts(tmp_path)
    module = FakeModule(tmp_path, answers=accounts.answers())
    with pytest.raises(Failed) as failure:
        Plan(module).locked_account(name, "accounts")
    assert failure.value.result["field"] == "accounts" and failure.value.result["msg"].startswith("accounts: ")
    assert module.commands == []


def test_an_account_the_command_did_not_lock_fails_the_run(tmp_path):
    """The step reads the account back: a useradd that left the password usable is no silent success."""
    accounts = Accounts(tmp_path)

    def careless_useradd(args):
        accounts.add(args[-1], 992, NOLOGIN, "$6$usable")
        return 0, "", ""
    with pytest.raises(Failed) as failure:
        run(tmp_path, accounts, answers={("useradd",): careless_useradd})
    assert failure.value.result["field"] == "accounts" and "not locked" in failure.value.result["msg"]


def test_a_failing_useradd_fails_the_run(tmp_path):
    accounts = Accounts(tmp_path)
    with pytest.raises(Failed) as failure:
        run(tmp_path, accounts, answers={("useradd",): (9, "", "useradd: group tunnel exists")})
    assert "group tunnel exists" in failure.value.result["msg"]
