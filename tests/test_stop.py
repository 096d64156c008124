"""Stopping on a signal: the handler only notes it; check() raises it where stopping is safe."""

import signal
import threading

import pytest

from vaelib.machinery.stop import StopRequested, StopSignals


def raise_caught(signum):
    """Send ``signum`` to this process, refusing if nothing catches it (it would end the test run)."""
    assert signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    signal.raise_signal(signum)


def test_a_signal_is_noted_and_raised_only_by_check(sigint_as_python_sets_it):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopSignals(signal.SIGINT, signal.SIGTERM) as stop:
        stop.check()  # nothing has arrived: no exception
        raise_caught(signal.SIGTERM)  # without the handler, the end of this process
        assert stop.received == signal.SIGTERM
        with pytest.raises(StopRequested) as info:
            stop.check()
    assert info.value.signum == signal.SIGTERM and str(info.value) == "SIGTERM"
    assert isinstance(info.value, KeyboardInterrupt)  # code that stops on Ctrl-C stops on it too
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_meets_the_handler_that_was_there_before(sigint_as_python_sets_it):
    sigterm_before = signal.getsignal(signal.SIGTERM)  # SIG_DFL in a program: a second SIGTERM ends it
    with StopSignals(signal.SIGINT, signal.SIGTERM) as stop:
        raise_caught(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) == sigterm_before
        with pytest.raises(KeyboardInterrupt) as info:  # raised by Python's handler, at once
            signal.raise_signal(signal.SIGINT)
        assert not isinstance(info.value, StopRequested) and stop.received == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals(signal.SIGINT) as stop:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            stop.check()
        assert stop.received is None and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_nothing_is_installed(sigint_as_python_sets_it):
    sigterm_before = signal.getsignal(signal.SIGTERM)
    seen, errors = [], []

    def listen():
        try:
            with StopSignals(signal.SIGINT, signal.SIGTERM) as stop:  # signal.signal would raise ValueError here
                seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))
                stop.check()
        except BaseException as error:  # noqa: BLE001 - reported below, in the main thread
            errors.append(error)

    worker = threading.Thread(target=listen)
    worker.start()
    worker.join()
    assert errors == [] and seen == [(signal.default_int_handler, sigterm_before)]


def test_entering_again_listens_on_until_the_outer_block_ends(sigint_as_python_sets_it):
    stop = StopSignals(signal.SIGINT)
    with stop:
        with stop:  # as fit does with the command line's instance
            installed = signal.getsignal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == installed != signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_handlers_are_restored_when_the_block_raises(sigint_as_python_sets_it):
    sigterm_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ValueError):
        with StopSignals(signal.SIGINT, signal.SIGTERM):
            raise ValueError("bad data")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == sigterm_before
