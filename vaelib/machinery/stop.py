"""Stopping on a signal (Ctrl-C, SIGTERM), only at a moment where stopping is safe.

Python runs a signal handler in the main thread, between two bytecodes,
wherever that thread is, inside NumPy's or Numba's own machinery included:
Numba's dispatcher calls back into Python while it loads a compiled kernel. An
exception raised there does not always arrive as itself. A ``KeyboardInterrupt``
raised while a kernel was being loaded came out of the dispatcher as
``SystemError: CPUDispatcher(...) returned a result with an exception set``,
and one raised inside llvmlite's ctypes callback was printed as "Exception
ignored" and lost, so training ran on to its last epoch.

So the handlers of :class:`StopSignals` raise nothing: they note the signal,
and the code that listens calls :meth:`StopSignals.check` where stopping is
safe (the training loop: before every batch), which raises
:class:`StopRequested`, a ``KeyboardInterrupt``.

The first signal is a request. It also gives every signal listened for its
previous handler back, so that a second one acts as it would without vaelib:
a second Ctrl-C raises ``KeyboardInterrupt`` wherever the program is, and a
second SIGTERM ends the process at once, even inside a long compiled call. A
process that does not reach its next safe moment can always be stopped.

Signal handlers exist only in the main thread. Entered from any other thread
(an IPython subshell, a worker thread), :class:`StopSignals` installs nothing
and never reports a signal; a signal cannot interrupt that thread anyway.
"""

import signal
import threading


class StopRequested(KeyboardInterrupt):
    """A signal asked to stop, and this is a safe moment to do it.

    Attributes
    ----------
    signum : int
        The signal, e.g. ``signal.SIGTERM``.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """Listen for signals that ask a long computation to stop; stop only where :meth:`check` is called.

    Use as a context manager, one instance per computation::

        with StopSignals(signal.SIGINT, signal.SIGTERM) as stop:
            for batch in batches:
                stop.check()  # raises StopRequested after a signal
                step(batch)

    While the ``with`` block runs, each signal listed gets a handler that
    notes it in :attr:`received` and restores the previous handlers (see the
    module docstring); on leaving the block the previous handlers are restored.
    A signal whose handler is ``SIG_IGN`` stays ignored (a shell starts
    background jobs with SIGINT ignored), and one whose handler was not set
    from Python is left alone. Entering an instance that is already listening
    changes nothing, so a function can listen for its caller's signals
    (``fit(..., stop=stop)``).

    Parameters
    ----------
    *signums : int
        The signals to listen for, e.g. ``signal.SIGINT, signal.SIGTERM``.

    Attributes
    ----------
    received : int or None
        The first of those signals to arrive, or None.
    """

    def __init__(self, *signums):
        self.signums = signums
        self.received = None
        self._previous = {}  # signal -> handler to restore, for the handlers installed here
        self._depth = 0

    def __enter__(self):
        if self._depth == 0 and threading.current_thread() is threading.main_thread():
            for signum in self.signums:
                if signal.getsignal(signum) in (signal.SIG_IGN, None) or self.received is not None:
                    continue
                self._previous[signum] = signal.signal(signum, self._on_signal)
        self._depth += 1
        return self

    def __exit__(self, *exc_info):
        self._depth -= 1
        if self._depth == 0:
            self._restore()

    def check(self):
        """Raise :class:`StopRequested` if a signal has arrived; call it where stopping is safe."""
        if self.received is not None:
            raise StopRequested(self.received)

    def _on_signal(self, signum, frame):
        if self.received is None:
            self.received = signum
        self._restore()

    def _restore(self):
        while self._previous:
            signum, handler = self._previous.popitem()
            signal.signal(signum, handler)
