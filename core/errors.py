"""The one kind of error that is the user's, not the code's: bad input (a space, a parameter, a records
file, a command-line option). Its message is one line naming the field and the allowed values; the
command line prints it and exits 2. Every other exception is a bug and shows its traceback."""


class InputError(ValueError):
    """Bad input; the message is one line naming the field and the allowed values."""


class UnknownName(InputError, KeyError):
    """A name (method, benchmark, ...) that is not registered; also a KeyError for lookups."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
