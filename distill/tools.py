"""The Python tool a trace may call while it thinks: `<python>code</python>`, answered by `<output>…</output>`.

A 135M student cannot see the letters inside its tokens, nor carry digits reliably (README, "Measured
here"); it can copy a word or numbers into a one-line program. So the teacher's traces decide what to
compute and call the tool, and every runtime that generates for the student (evaluation, the thinking
sweep, GRPO, the server) stops at `</python>`, runs the code in the sandbox and writes its output back
before the model goes on, as nanochat's calculator and PAL/ToRA-style tool-integrated reasoning do.
"""

from __future__ import annotations

import ast

from distill.sandbox import run_program

CALL_OPEN, CALL_CLOSE = "<python>", "</python>"
OUTPUT_OPEN, OUTPUT_CLOSE = "<output>", "</output>"
MAX_OUTPUT_CHARS = 200  # a one-line result; a runaway print must not flood the context
TIMEOUT_S = 5.0


def call(code: str, output: str) -> str:
    """A call and its result as they appear in a trace."""
    return f"{CALL_OPEN}{code}{CALL_CLOSE}\n{OUTPUT_OPEN}{output}{OUTPUT_CLOSE}"


def pending_call(text: str) -> str | None:
    """The code of a call that `text` has just closed and nobody has answered yet, else None."""
    if not text.rstrip().endswith(CALL_CLOSE):
        return None
    return text.rstrip()[: -len(CALL_CLOSE)].rpartition(CALL_OPEN)[2]


def as_script(code: str) -> str:
    """REPL-style: a last line that is an expression has its value printed, unless it is None (a `print(...)`)."""
    tree = ast.parse(code)
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.unparse(tree.body[-1])
        tree.body[-1:] = ast.parse(f"_ = {last}\nif _ is not None:\n    print(repr(_))").body
    return ast.unparse(tree)


def run_python(code: str) -> str:
    """What the tool answers: the printed output, or the error's last line, cut to `MAX_OUTPUT_CHARS`.
    The code runs in the sandbox (no network, time and memory limits, a throwaway directory)."""
    try:
        script = as_script(code)
    except SyntaxError as err:
        return f"SyntaxError: {err.msg}"
    result = run_program(script, timeout_s=TIMEOUT_S, cpu_s=int(TIMEOUT_S), memory_mb=256, max_output_bytes=4096)
    if result.ok or result.truncated:  # a flood of output is cut, not an error
        return result.stdout.strip()[:MAX_OUTPUT_CHARS]
    return (result.stderr.strip().splitlines() or [result.killed_reason or "error"])[-1][:MAX_OUTPUT_CHARS]


def answer(text: str) -> str:
    """What goes after a pending call's `</python>`: its output, then a new line for the model to go on from."""
    return f"\n{OUTPUT_OPEN}{run_python(pending_call(text) or '')}{OUTPUT_CLOSE}\n"
