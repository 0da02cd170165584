"""Server-side SVG charts: ticks, labels on every point, escaping and empty charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import pytest

from services.dashboard.devices_pages import time_unit
from services.dashboard.plots import (
    MAX_LABELLED_POINTS,
    Series,
    format_number,
    line_chart,
    nice_ticks,
    sparkline,
)

SVG = "{http://www.w3.org/2000/svg}"


def texts_of(svg: str, css_class: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return [element.text or "" for element in root.iter(f"{SVG}text") if element.get("class") == css_class]


def test_nice_ticks_cover_range_with_round_steps():
    ticks = nice_ticks(0.0, 35.0)
    assert ticks[0] <= 0.0
    assert ticks[-1] >= 35.0
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert steps == {10.0}


def test_nice_ticks_single_value_widens_range():
    ticks = nice_ticks(5.0, 5.0)
    assert len(ticks) >= 2
    assert ticks[0] <= 5.0 <= ticks[-1]


def test_format_number_three_significant_digits():
    assert format_number(621.2248) == "621"
    assert format_number(0.6153) == "0.615"
    assert format_number(0) == "0"
    assert format_number(123456.0) == "1.2e+05"


def test_line_chart_labels_axes_and_every_point():
    series = [Series("wiki", [(0, 20.5), (15, 23.1), (35, 30.0)]), Series("books", [(0, 40.0), (15, 51.0), (35, 70.2)])]
    svg = line_chart("Perplexity", "global pruning rate (%)", "perplexity", series)

    assert texts_of(svg, "chart-label") == ["global pruning rate (%)", "perplexity"]
    assert texts_of(svg, "chart-value") == ["20.5", "23.1", "30", "40", "51", "70.2"]
    assert texts_of(svg, "chart-legend") == ["wiki", "books"]
    assert 'role="img"' in svg
    assert 'aria-label="Perplexity"' in svg


def test_line_chart_thins_labels_of_long_series():
    points = [(float(index), float(index)) for index in range(100)]
    svg = line_chart("Throughput", "minutes", "tokens/s", [Series("tokens/s", points)])
    values = texts_of(svg, "chart-value")
    assert len(values) <= MAX_LABELLED_POINTS + 1
    assert values[-1] == "99"


def test_line_chart_escapes_names():
    svg = line_chart("<script>", "x", "y", [Series("a&b", [(0, 1), (1, 2)]), Series("c", [(0, 2)])])
    assert "<script>" not in svg
    assert "a&amp;b" in svg
    ElementTree.fromstring(svg)


def test_line_chart_without_points_says_so():
    svg = line_chart("Accuracy", "rate", "accuracy", [Series("piqa", [])])
    assert texts_of(svg, "chart-empty") == ["no data yet"]
    assert not re.search(r"<polyline", svg)


def test_sparkline_describes_latest_and_range():
    svg = sparkline([10.0, 12.5, 11.0], "tokens/s over the last 3 heartbeats")
    assert 'aria-label="tokens/s over the last 3 heartbeats: latest 11, range 10 to 12.5"' in svg
    assert texts_of(svg, "chart-value") == ["11"]


def test_sparkline_without_values_is_empty():
    assert sparkline([], "tokens/s") == ""


@pytest.mark.parametrize(("span_seconds", "unit"), [(30, "seconds"), (600, "minutes"), (86_400, "hours")])
def test_history_time_unit_follows_span(span_seconds, unit):
    assert time_unit(span_seconds)[0] == unit
