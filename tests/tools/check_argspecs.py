"""Check that every role's meta/argument_specs.yml agrees with its defaults/main.yml.

For each entry point's options: every variable in defaults/main.yml is declared, every declared default equals
the value in defaults/main.yml, and no variable in defaults/main.yml is left without its declared default.

usage: python check_argspecs.py ROLES_DIR
"""
from __future__ import annotations

import pathlib
import sys

import yaml


def _load(path: pathlib.Path) -> dict:
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def check_role(role_dir: pathlib.Path) -> list[str]:
    """Return the disagreements found in one role, each naming the role and the variable."""
    role = role_dir.name
    specs = _load(role_dir / "meta" / "argument_specs.yml").get("argument_specs")
    if not specs:
        return [f"{role}: meta/argument_specs.yml is missing or declares no entry point"]
    defaults = _load(role_dir / "defaults" / "main.yml")
    options = (specs.get("main") or {}).get("options") or {}
    problems = []
    for name, value in defaults.items():
        if name not in options:
            problems.append(f"{role}: {name} is in defaults/main.yml but not in argument_specs")
        elif "default" not in options[name]:
            problems.append(f"{role}: {name} has no default in argument_specs (defaults/main.yml has {value!r})")
        elif options[name]["default"] != value:
            problems.append(
                f"{role}: {name} defaults to {value!r} in defaults/main.yml "
                f"but to {options[name]['default']!r} in argument_specs"
            )
    for name, spec in options.items():
        if "default" in spec and name not in defaults:
            problems.append(f"{role}: {name} has a default in argument_specs but none in defaults/main.yml")
        if not spec.get("description"):
            problems.append(f"{role}: {name} has no description in argument_specs")
    return problems


def main(argv: list[str]) -> int:
    roles_dir = pathlib.Path(argv[1] if len(argv) > 1 else "roles")
    roles = sorted(path for path in roles_dir.iterdir() if path.is_dir()) if roles_dir.is_dir() else []
    problems = [problem for role in roles for problem in check_role(role)]
    for problem in problems:
        print(problem)
    print(f"argument specs: {len(roles)} roles checked, {len(problems)} disagreements")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
