"""The sampled-accuracy estimators against values worked out by hand, and majority voting with ties."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from distill.metrics import best_of_n, maj_at_k, majority_vote, mean_and_se, pass_at_k, sample_table


def s(predicted, correct, tokens=10, format_ok=True):
    return {"predicted": predicted, "correct": correct, "tokens": tokens, "format_ok": format_ok}


def test_pass_at_k_matches_hand_values_and_the_binomial_form():
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)  # pass@1 is c/n
    assert pass_at_k(8, 0, 4) == 0.0 and pass_at_k(8, 8, 1) == 1.0
    assert pass_at_k(5, 4, 2) == 1.0  # fewer than k wrong samples: some k-subset always holds a right one
    exact = 1 - Fraction(math.comb(100, 100), math.comb(200, 100))
    assert pass_at_k(200, 100, 100) == pytest.approx(float(exact))  # the product form stays finite at large n
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_mean_and_standard_error():
    assert mean_and_se([0.0, 1.0, 1.0, 0.0]) == pytest.approx((0.5, math.sqrt((1 / 3) / 4)))
    assert mean_and_se([0.25]) == (0.25, 0.0)


def test_majority_vote_ties_go_to_the_first_seen_and_missing_never_wins():
    assert majority_vote(["3", "4", "4", "3"]) == "3"  # tie: "3" was seen first
    assert majority_vote(["4", "3", "3", "4"]) == "4"
    assert majority_vote(["2", "5", "5"]) == "5"
    assert majority_vote([None, None, "5"]) == "5"  # two missing answers do not outvote one answer
    assert majority_vote([None, None]) is None and majority_vote([]) is None
    assert majority_vote([" 7", "7 ", "8"]) == "7"  # compared after stripping whitespace


def test_maj_at_k_uses_the_first_k_samples():
    samples = [s("4", True), s("3", False), s("3", False), s("3", False)]
    assert maj_at_k(samples, 1) is True
    assert maj_at_k(samples, 2) is True  # 4 vs 3 tie: the earlier "4" wins
    assert maj_at_k(samples, 3) is False
    assert maj_at_k([s(None, False), s(None, False)], 2) is False


def test_best_of_n_prefers_an_answer_then_format_then_fewer_tokens_then_the_earliest():
    samples = [
        s(None, False, tokens=1),
        s("3", False, tokens=5, format_ok=False),
        s("4", True, tokens=9),
        s("5", False, tokens=9),
    ]
    assert best_of_n(samples, 2)["predicted"] == "3"  # an answer beats none, even ill-formed
    assert best_of_n(samples, 4)["predicted"] == "4"  # well-formed beats shorter; equal tokens: the earlier
    assert best_of_n([s("1", False, 7), s("2", True, 3)], 2)["predicted"] == "2"


def test_sample_table_by_hand():
    rows = [
        {"family": "a", "samples": [s("1", True), s("2", False), s("2", False), s("1", True)]},  # c=2
        {"family": "b", "samples": [s("9", False), s("9", False), s("9", False), s("8", True)]},  # c=1
    ]
    table = sample_table(rows, [1, 2, 4])
    overall = table["overall"]
    assert overall["pass@1"] == pytest.approx((0.5 + 0.25) / 2)
    assert overall["pass@1_se"] == pytest.approx(math.sqrt(((0.5 - 0.375) ** 2 + (0.25 - 0.375) ** 2) / 1 / 2))
    assert overall["pass@2"] == pytest.approx((pass_at_k(4, 2, 2) + pass_at_k(4, 1, 2)) / 2)  # (5/6 + 1/2) / 2
    assert overall["pass@4"] == 1.0
    assert overall["maj@1"] == 0.5 and overall["maj@2"] == 0.5  # a: "1" beats "2" on the tie; b: "9"
    assert overall["maj@4"] == 0.5  # a: 1 vs 2 tied 2-2, "1" first; b: "9" three times
    assert table["per_family"]["b"]["maj@4"] == 0.0 and table["per_family"]["b"]["pass@4"] == 1.0
    with pytest.raises(ValueError):
        sample_table(rows, [8])
