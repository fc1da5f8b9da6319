"""make demo's summary (lab/scripts/demo_summary.py): one sentence per check, grouped per capability."""
from __future__ import annotations

import ast
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("demo_summary", ROOT / "lab/scripts/demo_summary.py")
demo_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_summary)


def defined_tests(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


DEMO_TESTS = [ROOT / "molecule/demo/tests/test_demo.py", ROOT / "molecule/_shared/test_secrets_audit.py"]


@pytest.mark.skipif(not all(path.exists() for path in DEMO_TESTS), reason="run from the checkout")
@pytest.mark.parametrize("name", [name for path in DEMO_TESTS if path.exists() for name in defined_tests(path)])
def test_every_demo_check_has_a_sentence(name):
    assert name in demo_summary.SENTENCES, f"add a sentence for {name} to lab/scripts/demo_summary.py"


def test_sentences_are_grouped_per_capability_and_count_containers():
    log = "\n".join([
        "tests/test_demo.py::test_gateway_masquerade_shows_the_gateways_address_to_the_outside PASSED",
        "../../_shared/test_secrets_audit.py::test_no_secret_in_the_journal_or_the_process_list[demo-client] PASSED",
        "../../_shared/test_secrets_audit.py::test_no_secret_in_the_journal_or_the_process_list[demo-proxy] PASSED [ 50%]",
        "tests/test_demo.py::test_news_banner_through_L12345_localhost_119 FAILED",
        "tests/test_demo.py::test_a_check_added_later PASSED",
    ])
    assert demo_summary.summary(log) == [
        "  Gateway NAT and port forwards:",
        "    - The news host reached the outside host with the gateway's address (masquerade).",
        "  Secrets:",
        "    - No secret appeared in the journal or the process list of any of the 2 lab containers.",
        "  Other checks:",
        "    - A check added later.",
    ]
