"""The project's one exception type for mistakes a user can fix, and the exit statuses a run
ends with."""

EXIT_USER_ERROR = 2  # a UserError: one line on stderr
EXIT_DIVERGED = 3  # a single run whose loss stopped being finite
# A run stopped by a signal exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).


class UserError(Exception):
    """A bad config value, missing file or impossible request.

    The command-line edge turns it into one line on stderr and exit status 2; anything else that
    escapes is a bug of ours and keeps its traceback.
    """
