from ttsr.errors import first_line


def test_first_line_of_a_multi_line_message():
    assert first_line(ValueError("\n  first problem\nsecond line\n")) == "first problem"


def test_type_name_when_the_message_is_empty():
    assert first_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert first_line(RuntimeError("  \n")) == "RuntimeError"
