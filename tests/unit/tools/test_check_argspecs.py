from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))

import check_argspecs  # noqa: E402  pylint: disable=wrong-import-position


def make_role(tmp_path: pathlib.Path, defaults: str, specs: str) -> pathlib.Path:
    role = tmp_path / "roles" / "demo"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text(defaults)
    (role / "meta" / "argument_specs.yml").write_text(specs)
    return role


SPECS = """
argument_specs:
  main:
    short_description: demo
    options:
      demo_port: {type: int, default: 22, description: Port.}
      demo_name: {type: str, required: true, description: Name.}
"""


def test_agreeing_role_has_no_problems(tmp_path):
    assert check_argspecs.check_role(make_role(tmp_path, "demo_port: 22\n", SPECS)) == []


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ("demo_port: 2222\n", "demo_port defaults to 2222 in defaults/main.yml but to 22"),
        ("demo_port: 22\ndemo_extra: 1\n", "demo_extra is in defaults/main.yml but not in argument_specs"),
        ("{}\n", "demo_port has a default in argument_specs but none in defaults/main.yml"),
        ("demo_port: 22\ndemo_name: x\n", "demo_name has no default in argument_specs"),
    ],
)
def test_disagreements_are_named(tmp_path, defaults, expected):
    problems = check_argspecs.check_role(make_role(tmp_path, defaults, SPECS))
    assert any(expected in problem for problem in problems), problems


def test_missing_argument_specs_is_a_problem(tmp_path):
    role = tmp_path / "roles" / "bare"
    (role / "defaults").mkdir(parents=True)
    assert check_argspecs.check_role(role) == ["bare: meta/argument_specs.yml is missing or declares no entry point"]


def test_main_exit_code_reports_disagreement(tmp_path, capsys):
    make_role(tmp_path, "demo_port: 1\n", SPECS)
    assert check_argspecs.main(["x", str(tmp_path / "roles")]) == 1
    assert "1 roles checked, 1 disagreements" in capsys.readouterr().out
