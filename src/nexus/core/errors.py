"""The one exception tree of Bedtime Nexus.

Every error a user can cause derives from :class:`NexusError`. Each carries an
``exit_code`` used by the CLI and a message written as *what is wrong* followed by
*how to fix it*, so that the CLI can print it as a single line.

Hierarchy::

    NexusError                      exit 1
    ├── ConfigError                 exit 78  settings or environment are invalid
    ├── InvalidInputError           exit 2   a value given by the user is invalid (also a ValueError)
    │   └── DataFormatError         exit 65  a file cannot be parsed (EDF, hypnogram, program …)
    ├── StorageError                exit 74  the database or data folder cannot be used
    │   └── MigrationError          exit 74  the database schema does not match the code
    ├── NotFoundError               exit 3   a client, session or file does not exist (also a LookupError)
    ├── StateError                  exit 4   an action is not allowed in the current state
    └── SafetyError                 exit 5   an action would break a hard safety limit
"""

from __future__ import annotations


class NexusError(Exception):
    """Base class of every Bedtime Nexus error.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it, in one sentence or two.
    """

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(NexusError):
    """Settings or environment variables are invalid."""

    exit_code = 78


class InvalidInputError(NexusError, ValueError):
    """A value given by the user (argument, option, field) is invalid."""

    exit_code = 2


class DataFormatError(InvalidInputError):
    """A file (EDF, hypnogram, program, …) cannot be parsed."""

    exit_code = 65


class StorageError(NexusError):
    """The database or the data folder cannot be used."""

    exit_code = 74


class MigrationError(StorageError):
    """The database schema does not match this version of the code."""


class NotFoundError(NexusError, LookupError):
    """A client, session, program or file does not exist."""

    exit_code = 3


class StateError(NexusError):
    """An action is not allowed in the current state (e.g. an invalid session transition)."""

    exit_code = 4


class SafetyError(NexusError):
    """An action would break a hard safety limit; nothing was done."""

    exit_code = 5
