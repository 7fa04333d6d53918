"""The project's one exception type for mistakes a user can fix, the exit statuses a run ends
with, and the one place where a `UserError` becomes a line on stderr and status 2 (`exit_user_error`,
`or_exit`): the scripts and the Hydra plugins end there, without the Hydra task module."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

EXIT_USER_ERROR = 2  # a UserError: one line on stderr
EXIT_DIVERGED = 3  # a single run whose loss stopped being finite
# A run stopped by a signal exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).


class UserError(Exception):
    """A bad config value, missing file or impossible request.

    The command-line edge turns it into one line on stderr and exit status 2; anything else that
    escapes is a bug of ours and keeps its traceback.
    """


def exit_user_error(message: str) -> NoReturn:
    """Prints ``jax_mlp: error: MESSAGE`` on stderr and exits with status 2."""
    print(f"jax_mlp: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def or_exit(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``; a `UserError` it raises ends the process as `exit_user_error` does."""
    try:
        return function(*args)
    except UserError as error:
        exit_user_error(str(error))
