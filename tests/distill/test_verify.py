import pytest

from distill.answers import boxed_contents, extract_answer, format_problems, split_reasoning
from distill.rewards import correctness_reward, format_reward
from distill.verify import is_correct, judge

GOOD = "<think>\n47 × 23 = 940 + 141 = 1081.\n</think>\n\nThe answer is \\boxed{1081}."


def test_right_answer_verifies():
    assert judge(GOOD, "1081", "math") == (True, [])


def test_wrong_answer_is_rejected_with_reason():
    ok, reasons = judge(GOOD, "1080", "math")
    assert not ok and reasons == ["wrong answer: '1081', expected '1080'"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<think>\nno end of thinking \\boxed{3}", "think block not closed exactly once"),
        ("<think>\nwork\n</think>\n\nno box here", "no boxed answer"),
        ("<think>\nwork\n</think>\n\n\\boxed{3} or \\boxed{4}", "more than one boxed answer"),
        ("<think>\n\n</think>\n\n\\boxed{3}", "empty reasoning"),
        ("<think>\na\n</think>\n\n</think> \\boxed{3}", "think block not closed exactly once"),
    ],
)
def test_malformed_traces_are_rejected(text, reason):
    ok, reasons = judge(text, "3", "exact")
    assert not ok and reason in reasons


def test_missing_answer():
    ok, reasons = judge("<think>\nhmm\n</think>\n\nI am not sure.", "3", "exact")
    assert not ok and "no answer found" in reasons


@pytest.mark.parametrize(
    ("predicted", "reference", "verifier", "expected"),
    [
        ("1081", "1081", "math", True),
        ("1081.0", "1081", "math", True),
        ("\\frac{1}{2}", "0.5", "math", True),
        ("2+3", "5", "math", True),
        ("1082", "1081", "math", False),
        ("3", "3", "exact", True),
        (" 3. ", "3", "exact", True),
        ("three", "3", "exact", False),
        (None, "3", "exact", False),
    ],
)
def test_answer_checks(predicted, reference, verifier, expected):
    assert is_correct(predicted, reference, verifier) is expected


def test_unknown_verifier_and_unparseable_reference():
    with pytest.raises(ValueError, match="unknown verifier"):
        is_correct("1", "1", "fuzzy")
    with pytest.raises(ValueError, match="does not parse"):
        is_correct("1", "}{", "math")


def test_extraction_reads_every_model_the_same_way():
    assert extract_answer(GOOD) == "1081"
    assert extract_answer("Step by step... so the answer is 42.") == "42"
    assert extract_answer("no think, just \\boxed{7}") == "7"
    assert extract_answer("<think>maybe \\boxed{1}</think> final \\boxed{2}") == "2"
    assert extract_answer("nothing useful") is None
    assert boxed_contents("\\boxed{\\frac{1}{2}} and \\boxed{x^{2}}") == ["\\frac{1}{2}", "x^{2}"]
    assert split_reasoning("plain") == (None, "plain")
    assert format_problems(GOOD) == []


def test_rewards_take_trl_conversational_completions():
    completions = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "\\boxed{1081}"}]]
    assert correctness_reward(completions, answer=["1081", "1081"], verifier=["math", "math"]) == [1.0, 1.0]
    assert format_reward(completions) == [1.0, 0.0]
    assert correctness_reward(["<think>x</think> \\boxed{2}"], answer=["3"], verifier=["exact"]) == [0.0]
