"""The tunnel server's accounts (issue 17): the module refuses root and entries for unlisted accounts before anything
changes, naming the field; with create_accounts it makes them through the engine's account step before writing
their authorized_keys; its plan asks systemd once."""
from __future__ import annotations

import pytest

from ansible_collections.netreach.tunnels.plugins.module_utils._declaration import DeclarationError
from ansible_collections.netreach.tunnels.plugins.module_utils._engine import Plan
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server import parse_server
from ansible_collections.netreach.tunnels.plugins.module_utils._tunnel_server_apply import plan_server
from fakehost import Failed, FakeModule, snapshot, systemctl_show, unit_properties
from test_engine_accounts import NOLOGIN, Accounts
from test_tunnel_server_plan import ACCOUNT, HOME, KEY, PARAMS, host, real

ENTRY = PARAMS["entries"][0]


@pytest.mark.parametrize(("changes", "field"), [
    ({"accounts": ["root"]}, "accounts"),
    ({"accounts": [ACCOUNT, "root"], "create_accounts": True}, "accounts"),
    ({"accounts": ["Bad User"]}, "accounts"),
    ({"accounts": [ACCOUNT], "entries": [dict(ENTRY, account="admin")]}, "entries[0].account"),
    ({"accounts": [ACCOUNT], "create_accounts": True,
      "entries": [ENTRY, dict(ENTRY, tunnel="other", public_key=KEY + "X", account="root")]}, "entries[1].account"),
    ({"create_accounts": "yes"}, "create_accounts"),
])
def test_the_account_checks_the_role_asserted_fail_in_the_module_naming_the_field(changes, field):
    """What the role's assert checked (never root; every entry's account listed) fails in the module's parse, which
    runs before any plan: nothing on the host is read or changed."""
    with pytest.raises(DeclarationError) as info:
        parse_server(dict(PARAMS, **changes))
    assert info.value.field == field and str(info.value).startswith(f"{field}: ")


def run(tmp_path, accounts: Accounts | None = None, check: bool = False, **changes):
    answers = {("systemctl", "show"): systemctl_show(lambda unit: unit_properties(True, True))}
    answers.update(accounts.answers() if accounts else {})
    module = FakeModule(tmp_path, check_mode=check, answers=answers)
    plan = Plan(module)
    extra = plan_server(plan, parse_server({**PARAMS, "create_accounts": True, **changes}))
    return plan.commit(**extra), module


def test_a_missing_account_is_created_locked_before_its_authorized_keys_in_check_mode_and_for_real(tmp_path):
    """The account is the machine's own "daemon" (the writes chown to it), missing from the fake root's passwd until
    the fake useradd adds it, home /home/daemon."""
    host(tmp_path)
    accounts = Accounts(tmp_path)
    accounts.next_uid = 1
    before = snapshot(str(tmp_path))
    checked, module = run(tmp_path, accounts, check=True)
    assert checked["changed"] and snapshot(str(tmp_path)) == before
    assert not [args for args in module.commands if args[0] in ("useradd", "usermod")]
    assert f"# account {ACCOUNT}: created, locked, shell {NOLOGIN}, home /home/{ACCOUNT}\n" in checked["diff"]["after"]
    assert f"/home/{ACCOUNT}/.ssh/authorized_keys" in checked["diff"]["after"]
    assert checked["authorized"] == {ACCOUNT: ["laptop/news"]}

    module = FakeModule(tmp_path, answers={("systemctl", "show"): systemctl_show(lambda unit: unit_properties(True, True)),
                                           **accounts.answers()})
    plan = Plan(module)
    extra = plan_server(plan, parse_server(dict(PARAMS, create_accounts=True)))
    # The account step comes first: the authorized_keys steps after it chown to the new account.
    assert plan.steps[0].label == f"account {ACCOUNT}"
    applied = plan.commit(**extra)
    assert applied["changed"] and [args[0] for args in module.commands if args[0] != "systemctl"][0] == "useradd"
    assert accounts.line(ACCOUNT)[6] == NOLOGIN and accounts.line(ACCOUNT, "shadow")[1] == "!"
    with open(real(tmp_path, f"/home/{ACCOUNT}/.ssh/authorized_keys"), encoding="utf-8") as stream:
        assert KEY in stream.read()
    rerun, module = run(tmp_path, accounts)
    assert not rerun["changed"] and not [args for args in module.commands if args[0] in ("useradd", "usermod")]


def test_an_existing_ordinary_account_is_refused_before_anything_changes(tmp_path):
    host(tmp_path)
    accounts = Accounts(tmp_path)
    accounts.add(ACCOUNT, 1000, "/bin/bash", "$6$pw", home=HOME)
    before = snapshot(str(tmp_path))
    with pytest.raises(Failed) as failure:
        run(tmp_path, accounts)
    assert failure.value.result["field"] == "accounts" and "ordinary account" in failure.value.result["msg"]
    assert snapshot(str(tmp_path)) == before


def test_absent_leaves_the_accounts_alone(tmp_path):
    host(tmp_path)
    accounts = Accounts(tmp_path)
    accounts.add(ACCOUNT, 1, "/bin/sh", "$6$pw", home=HOME)
    _result, module = run(tmp_path, accounts, state="absent", entries=[])
    assert not [args for args in module.commands if args[0] in ("useradd", "usermod")]
    assert accounts.line(ACCOUNT)[6] == "/bin/sh"


def test_the_server_plan_asks_systemd_once(tmp_path):
    host(tmp_path)
    for _round in range(2):
        _result, module = run(tmp_path, create_accounts=False)
        asked = [args for args in module.commands if args[0] == "systemctl" and args[1] in ("show", "cat", "is-enabled")]
        assert len(asked) == 1 and asked[0][:3] == ["systemctl", "show", "--property=ActiveState,UnitFileState,LoadState"]
        assert sorted(asked[0][3:]) == ["netreach-tunnel-reaper.service", "ssh.service"]
