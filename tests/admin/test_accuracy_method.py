"""The Accuracy page's method name and its plain words for how much the prior contributed
(app/admin/views.py; the shares are defined in docs/predictions.md)."""

from __future__ import annotations

import pytest

from app.admin import views


@pytest.mark.parametrize(
    ("share", "lean"),
    [
        (0.05, "rests mostly on your own orders; typical store behaviour adds a little"),
        (0.3, "leans on your own orders more than on typical store behaviour"),
        (0.5, "leans on typical store behaviour as much as on yours"),
        (0.7, "leans on typical store behaviour more than on yours"),
        (0.9, "comes mostly from typical store behaviour; your own orders adjust it a little"),
    ],
)
def test_the_prior_share_is_said_in_words(share: float, lean: str) -> None:
    words = views.prior_words("model_with_prior", share, 60, "built-in")
    assert words is not None and words.startswith(f"With 60 repeat buyers, the forecast {lean} ")
    assert f"makes up about {share * 100:.0f}% of what the fit knows" in words


def test_a_prior_from_the_deployment_says_where_typical_behaviour_comes_from() -> None:
    words = views.prior_words("model_with_prior", 0.5, 1, "deployment")
    assert words is not None and words.startswith("With 1 repeat buyer, ")
    assert "from the larger shops using this app" in words


@pytest.mark.parametrize(("method", "share"), [("model", 0.004), ("model", None), ("segment_formula", None)])
def test_without_a_prior_that_counted_there_are_no_prior_words(method: str, share: float | None) -> None:
    assert views.prior_words(method, share, 5000, "built-in") is None


def test_each_method_has_its_name() -> None:
    assert views.method_sentence("model_with_prior") == "Method: model with prior."
    assert views.method_sentence("model") == "Method: model."
    assert views.method_sentence("segment_formula") == "Method: fallback (the segment formula)."
