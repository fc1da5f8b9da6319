"""The report's SVG plots: valid XML, every figure printed, bars and markers where the values put them, and no
reference to anything outside the file (the report must need no fetch when viewed)."""
from __future__ import annotations

import pathlib
import re
import sys
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCH = pathlib.Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))

import _plot  # noqa: E402  pylint: disable=wrong-import-position,import-error
import plots  # noqa: E402  pylint: disable=wrong-import-position,import-error

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def assert_self_contained(svg: str) -> None:
    root = parse(svg)
    for node in root.iter():
        assert node.tag.split("}")[1] not in ("image", "script", "foreignObject", "style", "use", "a"), node.tag
        for name, value in node.attrib.items():
            assert "href" not in name, (node.tag, name)
            assert "url(" not in value, (node.tag, name, value)
    # The only URI in the file is the SVG namespace name, which is an identifier and never fetched.
    assert re.findall(r"[a-z]+://[^\s\"'<>]+", svg) == ["http://www.w3.org/2000/svg"]
    assert "@import" not in svg


def bars(root: ET.Element) -> list[ET.Element]:
    return [node for node in root.iter(f"{SVG}rect") if node.find(f"{SVG}title") is not None]


def test_bar_chart_prints_every_value_and_the_taller_bar_is_the_bigger_value():
    svg = _plot.bar_chart("Recovery", ["kill", "cut"], {"netreach": [1.4, 1.5], "plain": [60.8, 0.13]}, "seconds",
                          unit=" s", targets=(_plot.Target(2.0, "target 2 s", "kill"),))
    assert_self_contained(svg)
    root = parse(svg)
    labels = texts(root)
    for figure in ("1.4 s", "1.5 s", "60.8 s", "0.13 s", "target 2 s", "kill", "cut", "netreach", "plain", "Recovery"):
        assert figure in labels, figure
    heights = {node.find(f"{SVG}title").text: float(node.get("height")) for node in bars(root)}
    assert heights["plain, kill: 60.8 s"] > heights["netreach, cut: 1.5 s"] > heights["netreach, kill: 1.4 s"]


def test_log_scale_ticks_are_powers_of_ten_and_keep_the_order():
    svg = _plot.bar_chart("NAT", ["first run"], {"nat_rules": [3.2], "loop": [1265.2]}, "seconds", unit=" s", log=True)
    root = parse(svg)
    assert {"1", "10", "100", "1,000", "10,000"} <= set(texts(root))
    assert "log scale" in texts(root)
    small, large = sorted(bars(root), key=lambda node: float(node.get("height")))
    assert "nat_rules" in small.find(f"{SVG}title").text and "loop" in large.find(f"{SVG}title").text


def test_a_value_without_a_figure_is_drawn_hollow_up_to_the_cap_with_its_label():
    root = parse(_plot.bar_chart("Dead link", ["black hole"], {"netreach": [17.7], "plain": [None]}, "s",
                                 cap=150, missing="> 150 s (never)"))
    assert "> 150 s (never)" in texts(root)
    hollow = [node for node in root.iter(f"{SVG}rect") if node.get("fill") == "none"]
    assert len(hollow) == 1 and hollow[0].get("stroke-dasharray")


def test_line_chart_places_markers_by_value_and_draws_the_target():
    svg = _plot.line_chart("Fleet", [5, 10, 20, 30], {"rerun": [10.0, 20.0, 40.0, 60.0]}, "hosts", "seconds",
                           unit=" s", targets=(_plot.Target(50.0, "target"),))
    assert_self_contained(svg)
    root = parse(svg)
    markers = list(root.iter(f"{SVG}circle"))
    xs = [float(node.get("cx")) for node in markers]
    ys = [float(node.get("cy")) for node in markers]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)
    assert (xs[2] - xs[1]) == pytest.approx(2 * (xs[1] - xs[0]), abs=0.2)
    assert {"10 s", "20 s", "40 s", "60 s", "target", "5", "30"} <= set(texts(root))


def test_hbar_chart_escapes_labels_and_orders_lengths():
    svg = _plot.hbar_chart("Throughput <MB/s> & more", ["a<b", "c & d"], [100.0, 300.0], "MB/s",
                           targets=(_plot.Target(250.0, "0.95x"),), highlight=("c & d",))
    assert_self_contained(svg)
    root = parse(svg)
    assert {"a<b", "c & d", "100", "300", "0.95x", "Throughput <MB/s> & more"} <= set(texts(root))
    short, long_ = bars(root)
    assert float(long_.get("width")) == pytest.approx(3 * float(short.get("width")), abs=0.3)
    assert long_.get("fill") != short.get("fill")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=1e5, allow_nan=False), min_size=1, max_size=6), st.booleans())
def test_any_positive_figures_give_a_valid_self_contained_chart_with_every_figure(values, log):
    svg = _plot.bar_chart("t", [f"c{i}" for i in range(len(values))], {"s": values}, "y", log=log)
    assert_self_contained(svg)
    labels = texts(parse(svg))
    for value in values:
        assert _plot.fmt(value) in labels
    tops = [float(node.get("y")) for node in bars(parse(svg))]
    for (a, ya), (b, yb) in zip(zip(values, tops), zip(values[1:], tops[1:])):
        if a < b:
            assert ya >= yb


def test_plots_draws_every_benchmark_from_the_saved_results(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "PLOTS", tmp_path)
    plots.main()
    drawn = {path.name for path in tmp_path.iterdir()}
    saved = {path.stem for path in (BENCH / "results").glob("*.json")}
    expected = {"tunnel_recovery": {"recovery.svg", "dead-link.svg"}, "nat": {"nat.svg"},
                "fleet": {"fleet-ssh.svg", "fleet-docker.svg", "fleet-ratio.svg", "fleet-converge-ssh.svg",
                          "fleet-converge-docker.svg"}, "tunnel_throughput": {"throughput.svg"}}
    assert drawn == set().union(*(expected[name] for name in saved))
    for path in tmp_path.iterdir():
        assert_self_contained(path.read_text())
    fleet = plots.load("fleet")
    if fleet:
        for row in fleet["sizes"]:
            labels = texts(parse((tmp_path / f"fleet-{row['connection']}.svg").read_text()))
            assert f"{_plot.fmt(row['rerun_s'])} s" in labels
