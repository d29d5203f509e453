"""native_output_captured keeps TensorFlow's noise out of the terminal without breaking later logging."""

from __future__ import annotations

import logging
import sys

from train.tfenv import native_output_captured


def test_a_handler_made_during_the_capture_logs_to_stderr_afterwards(capfd):
    logger = logging.getLogger("edge-test-made-inside-capture")
    logger.propagate = False
    try:
        with native_output_captured():
            # TensorFlow's logger adds its StreamHandler on first use, bound to the sys.stderr of that moment
            logger.addHandler(logging.StreamHandler(sys.stderr))
            logger.warning("inside: captured")
        logger.warning("after: shown")
    finally:
        logger.handlers.clear()
    err = capfd.readouterr().err
    assert "after: shown" in err
    assert "inside: captured" not in err
    assert "Logging error" not in err
