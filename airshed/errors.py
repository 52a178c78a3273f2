"""Exceptions that airshed raises for bad input.

Every error a user can cause (a typo in the config, a file without the expected variable, a grid with
zero cells) is an :class:`AirshedInputError` whose message names the key, file or variable and says what
was expected. The CLI prints these as one line and exits with status 2; anything else is a bug (status 1).
"""


class AirshedInputError(ValueError):
    """Bad user input: the message names the config key, file or variable and what was expected."""


class ConfigError(AirshedInputError):
    """The TOML config is invalid (unknown key, wrong type, value out of bounds)."""


class DataError(AirshedInputError):
    """An input data file (meteorology, emissions, boundaries) is missing, malformed or inconsistent."""


class Terminated(SystemExit):
    """SIGTERM or SIGHUP arrived during a command (or an output being written); exit status 128 + signal.

    Raised by the handler of :func:`airshed.atomic_files.termination_as_exception`, so that every
    ``finally`` block and context manager removes its unfinished files, as Ctrl-C does.
    """

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        import signal

        return f"terminated by {signal.Signals(self.signum).name}"
