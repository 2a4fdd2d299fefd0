"""The package logger as the CLI configures it."""

import logging
import re

from nexus.core.log import logger, set_log_level


def test_log_lines_carry_an_iso_8601_time(capsys):
    set_log_level(verbose=1)
    try:
        logger.info("hello from the test")
    finally:
        logger.setLevel(logging.NOTSET)
        for h in list(logger.handlers):
            if not isinstance(h, logging.NullHandler):
                logger.removeHandler(h)
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert "hello from the test" in text
    assert re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", text), text
    assert not re.search(r"\d{2}/\d{2}/\d{2}", text)
