"""The guess line a model's accuracy is read against."""

from distill.records import Problem
from student.evaluate import guess_baseline


def problem(family: str, answer: str, **kw) -> Problem:
    return Problem(id=f"{family}-{answer}", family=family, question="?", answer=answer, **kw)


def test_guess_is_the_most_common_training_answer_graded_like_a_model():
    train = [problem("letters", a) for a in ("2", "1", "2", "0", "2")] + [problem("arithmetic", a) for a in ("12", "7", "7")]
    held_out = [problem("letters", a) for a in ("2", "1", "2", "0")] + [problem("arithmetic", a) for a in ("7.0", "8")]
    table = guess_baseline(train, held_out)
    assert table["guesses"] == {"letters": "2", "arithmetic": "7"}
    assert table["per_family"]["letters"] == {"accuracy": 0.5, "no_answer_rate": 0.0, "n": 4}
    assert table["per_family"]["arithmetic"]["accuracy"] == 0.5  # "7" matches "7.0": the model's verifier grades it
    assert table["overall"]["accuracy"] == 0.5 and table["overall"]["n"] == 6


def test_no_guess_for_code_or_for_a_family_never_trained_on():
    code = {"tests": ["assert f() == 1"], "meta": {"verifier": "code"}}
    train = [problem("mbpp", "", **code), problem("letters", "1")]
    held_out = [problem("mbpp", "", **code), problem("gsm8k", "3"), problem("letters", "1")]
    table = guess_baseline(train, held_out)
    assert table["guesses"] == {"letters": "1"} and set(table["per_family"]) == {"letters"}
    assert guess_baseline(train[:1], held_out[:2]) == {}
