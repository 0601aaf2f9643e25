"""Errors that mean the user's input is wrong (a path, a config, a file's contents), not the code.

The plugin raises these where it checks what it was given, so `yolo-mask` can print their message as one line
and exit with status 2 while any other exception, a bug, keeps its traceback. Each is also the built-in
exception callers already catch (FileNotFoundError, ValueError, KeyError).
"""
from __future__ import annotations


class InputError(Exception):
    """Something the user gave cannot be used; the message names it and says what is wrong."""


class InputNotFoundError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class InvalidInputError(InputError, ValueError):
    """A file, image, config or argument the user gave exists but cannot be used."""


class ConfigKeyError(InputError, KeyError):
    """A config key the user gave does not exist, or a config override is malformed."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
