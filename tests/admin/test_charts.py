"""The SVG charts carry their title, axis labels and every value as text (not colour alone)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.admin import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_a_heat_map_is_a_named_group_of_focusable_named_cells_with_every_value_written() -> None:
    svg = charts.heat_map(
        "Customers by R and FM",
        ["R 5", "R 4"],
        ["FM 1", "FM 2"],
        [[7, 12], [0, 3]],
        x_label="FM score",
        y_label="R score",
    )
    root = _parse(svg)
    assert root.get("role") == "group" and "Customers by R and FM" in (root.get("aria-label") or "")
    cells = root.findall(f".//{SVG}g[@class='cell']")
    assert len(cells) == 4 and all(c.get("tabindex") == "0" and c.get("role") == "img" for c in cells)
    assert cells[0].get("aria-label") == "R 5, FM 1: 7"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}title").text == "Customers by R and FM"  # type: ignore[union-attr]
    texts = _texts(root)
    assert {"7", "12", "0", "3", "R 5", "R 4", "FM 1", "FM 2", "FM score", "R score"} <= set(texts)


def test_a_heat_map_leaves_missing_cells_blank() -> None:
    root = _parse(
        charts.heat_map(
            "Cohorts",
            ["Jan"],
            ["0", "1"],
            [[100.0, None]],
            x_label="m",
            y_label="c",
            fmt=lambda v: f"{v:.0f}%",
        )
    )
    assert "100%" in _texts(root) and len(root.findall(f".//{SVG}rect[@class='cell']")) == 1


def test_a_bar_chart_writes_each_value_beside_its_bar() -> None:
    root = _parse(
        charts.bar_chart(
            "Share of revenue",
            ["Champions", "Loyal"],
            [0.42, 0.18],
            x_label="Share",
            y_label="Segment",
            fmt=lambda v: f"{100 * v:.1f}%",
        )
    )
    texts = _texts(root)
    assert {"Champions", "Loyal", "42.0%", "18.0%", "Share", "Segment"} <= set(texts)
    widths = [float(r.get("width") or 0) for r in root.findall(f".//{SVG}rect[@class='bar']")]
    assert widths[0] > widths[1] > 0


def test_grouped_bars_tell_series_apart_by_pattern_and_legend() -> None:
    svg = charts.grouped_bars(
        "Predicted vs actual",
        ["0", "1"],
        [charts.Series("Predicted", [1.5, 2.0]), charts.Series("Actual", [1.0, 2.5])],
        x_label="Repeat orders",
        y_label="Orders per customer",
    )
    root = _parse(svg)
    texts = _texts(root)
    assert {"Predicted", "Actual", "1.5", "2", "1", "2.5", "Repeat orders", "Orders per customer"} <= set(
        texts
    )
    fills = {r.get("fill") for r in root.findall(f".//{SVG}rect[@class='bar']")}
    assert len(fills) == 2 and any((f or "").startswith("url(#") for f in fills)


def test_chart_text_is_escaped() -> None:
    root = _parse(charts.bar_chart("<b>x</b> & y", ["a<b"], [1.0], x_label="x", y_label="y"))
    assert root.find(f"{SVG}title").text == "<b>x</b> & y"  # type: ignore[union-attr]
    assert "a<b" in _texts(root)


def test_every_heat_colour_reads_at_4_5_to_1_and_stands_out_from_the_card_at_3_to_1() -> None:
    white = (255, 255, 255)
    for step in range(101):
        fill, ink = charts._heat_colour(step / 100)
        assert charts.contrast(charts.rgb_of(fill), charts.rgb_of(ink)) >= 4.5, (step, fill, ink)
        assert charts.contrast(charts.rgb_of(fill), white) >= 3.0, (step, fill)


def test_every_series_colour_stands_out_from_the_card_at_3_to_1() -> None:
    for colour in charts.SERIES_COLOURS:
        assert charts.contrast(charts.rgb_of(colour), (255, 255, 255)) >= 3.0, colour


def test_no_chart_text_is_drawn_below_11_px() -> None:
    drawn = [
        charts.heat_map("h", ["a"], ["b"], [[1.0]], x_label="x", y_label="y"),
        charts.bar_chart("b", ["a"], [1.0], x_label="x", y_label="y"),
        charts.grouped_bars("g", ["0"], [charts.Series("s", [1.0])], x_label="x", y_label="y"),
        charts.came_back_chart(
            "c", ["Jan"], [charts.PartialSeries("30 days", [None])], x_label="x", y_label="y", missing="…"
        ),
    ]
    for svg in drawn:
        root = _parse(svg)
        default = float(root.get("font-size") or 0)
        sizes = [float(t.get("font-size") or default) for t in root.iter(f"{SVG}text")]
        assert sizes and min(sizes) >= 11, svg


def test_a_bar_chart_fits_a_phone_at_its_full_text_size() -> None:
    """Long labels go above their bars and a long axis label wraps: the chart stays within a phone's
    card (docs/design.md, "Phones"), with every word still written."""
    long_label = "Predicted by the fitted model of this shop"
    axis = "Share of the previous month's buyers who ordered again"
    for labels in (["Jan 2026", "Feb 2026"], [long_label, "Actual"]):
        svg = charts.bar_chart(
            "t", labels, [0.42, 0.18], x_label=axis, y_label="Month", fmt=lambda v: f"{v:.0%}"
        )
        root = _parse(svg)
        assert float(root.get("width") or 0) <= charts.FIT_WIDTH
        texts = _texts(root)
        assert set(labels) <= set(texts) and {"42%", "18%", "Month"} <= set(texts)
        assert " ".join(t for t in texts if t not in labels and t not in {"42%", "18%", "Month"}) == axis
