"""The errors a user causes and fixes (a setting, a path, a file, a value). Every one says what to fix in its
message; `mtl` prints it as one line and exits with code 2, where any other exception is a bug and keeps its
traceback."""


class UserError(ValueError):
    """Something the user can fix; the message names it and what to do."""


class ConfigError(UserError):
    """A config file that cannot describe a pipeline."""
