"""The Python tool: what a call answers, run in the real sandbox."""

from distill import tools


def test_the_last_expression_is_printed_like_a_repl():
    assert tools.run_python('"strawberry".count("r")') == "3"
    assert tools.run_python("x = 6\nx * 7") == "42"
    assert tools.run_python("'a' + 'b'") == "'ab'"
    assert tools.run_python("print(12 - 5)") == "7"


def test_errors_come_back_as_their_last_line():
    assert tools.run_python("1 / 0") == "ZeroDivisionError: division by zero"
    assert tools.run_python("3 +").startswith("SyntaxError")
    assert "PermissionError" in tools.run_python("import socket\nsocket.create_connection(('127.0.0.1', 80))")


def test_a_runaway_call_is_stopped_and_its_output_cut():
    assert "time" in tools.run_python("while True: pass").lower()
    assert len(tools.run_python("'x' * 100000")) == tools.MAX_OUTPUT_CHARS


def test_only_a_call_just_closed_is_pending():
    assert tools.pending_call('So:\n<python>"abc".count("a")</python>') == '"abc".count("a")'
    assert tools.pending_call("<python>1 + 1</python>\n") == "1 + 1"
    assert tools.pending_call("<python>1 + 1</python>\n<output>2</output>") is None
    assert tools.pending_call("no call here") is None


def test_a_trace_shows_a_call_as_the_runtime_answers_it():
    text = "Let me compute:\n<python>6 * 7</python>"
    assert text + tools.answer(text) == "Let me compute:\n" + tools.call("6 * 7", "42") + "\n"
