"""app/plot.py: line charts as SVG text, checked as XML."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest

from app.plot import Chart, Series, nice_step, number, render_svg, tick_values, y_range

NS = {"svg": "http://www.w3.org/2000/svg"}
XS = [0.0, 0.5, 1.0, 1.5, 2.0]


def chart(*series: Series, title: str = "mse", subtitle: str = "single values") -> Chart:
    return Chart(title, subtitle, "y_pred", "loss", XS, list(series))


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iterfind(f".//svg:text[@class='{cls}']", NS)]


def points(polyline: ET.Element) -> list[tuple[float, float]]:
    return [
        (float(x), float(y)) for x, y in (p.split(",") for p in polyline.get("points", "").split())
    ]


def test_a_chart_is_well_formed_svg_with_labelled_axes_and_a_legend() -> None:
    root = parse(
        render_svg(
            chart(Series("y_true = 0", [0, 1, 2, 3, 4]), Series("y_true = 1", [4, 3, 2, 1, 0]))
        )
    )
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert texts(root, "title") == ["mse"]
    assert texts(root, "subtitle") == ["single values"]
    assert texts(root, "x-label") == ["y_pred"]
    assert texts(root, "y-label") == ["loss"]
    assert texts(root, "legend-entry") == ["y_true = 0", "y_true = 1"]
    assert texts(root, "x-tick") == ["0", "0.5", "1", "1.5", "2"]
    assert texts(root, "y-tick")[0] == "0" and texts(root, "y-tick")[-1] == "4"
    curves = root.findall(".//svg:g[@class='curve']", NS)
    assert [c.get("data-label") for c in curves] == ["y_true = 0", "y_true = 1"]
    assert [len(c.findall("svg:polyline", NS)) for c in curves] == [1, 1]


def test_polyline_coordinates_map_the_data_monotonically() -> None:
    ys = [0.0, 0.25, 1.0, 2.25, 4.0]  # increasing: the pixels go up the picture (y shrinks)
    root = parse(render_svg(chart(Series("a", ys))))
    (line,) = root.findall(".//svg:polyline", NS)
    pixels = points(line)
    assert len(pixels) == len(XS)
    px, py = zip(*pixels, strict=True)
    assert all(a < b for a, b in itertools.pairwise(px))
    assert all(a > b for a, b in itertools.pairwise(py))
    # Linear: equal steps in x are equal steps in pixels; y pixels are affine in the values.
    steps = [b - a for a, b in itertools.pairwise(px)]
    assert max(steps) - min(steps) < 0.02
    slope = (py[-1] - py[0]) / (ys[-1] - ys[0])
    for y, pixel in zip(ys, py, strict=True):
        assert pixel == pytest.approx(py[0] + slope * (y - ys[0]), abs=0.02)


def test_every_text_is_escaped() -> None:
    nasty = "a <b> & \"c\" 'd'"
    svg = render_svg(Chart(nasty, nasty, nasty, nasty, XS, [Series(nasty, [1, 2, 3, 4, 5])]))
    assert "<b>" not in svg
    root = parse(svg)
    for cls in ("title", "subtitle", "x-label", "y-label", "legend-entry"):
        assert texts(root, cls) == [nasty]
    assert root.find(".//svg:g[@class='curve']", NS).get("data-label") == nasty  # type: ignore[union-attr]


def test_non_finite_values_leave_gaps() -> None:
    root = parse(render_svg(chart(Series("gap", [1, 2, math.nan, 3, math.inf]))))
    lines = root.findall(".//svg:polyline", NS)
    assert [len(points(line)) for line in lines] == [2, 1]
    nothing = parse(render_svg(chart(Series("none", [math.nan] * 5))))
    assert nothing.findall(".//svg:polyline", NS) == []
    assert texts(nothing, "legend-entry") == ["none"]


def test_a_series_must_match_the_xs() -> None:
    with pytest.raises(ValueError, match="one y value per x"):
        render_svg(chart(Series("short", [1, 2])))


def test_ticks_are_round_numbers() -> None:
    assert nice_step(6.0) == 1.0 and nice_step(0.98) == 0.2 and nice_step(700.0) == 200.0
    assert tick_values(0.01, 0.99) == [0.2, 0.4, 0.6, 0.8]
    assert tick_values(-6.0, 6.0) == [-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0]
    assert y_range([0.0, 9.0]) == (0.0, 10.0)
    assert y_range([-1.0, -0.3]) == (-1.0, -0.2)
    assert y_range([math.nan]) == (0.0, 1.0)
    low, high = y_range([3.0, 3.0])  # a flat line still gets a range
    assert low < 3.0 < high
    assert [number(v) for v in (0.1 + 0.2, -0.0, 1e-7, 1234567.0)] == [
        "0.3",
        "0",
        "1e-07",
        "1.23457e+06",
    ]
