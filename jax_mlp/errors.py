"""The project's one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A bad config value, missing file or impossible request.

    The command-line edge turns it into one line on stderr and exit status 2; anything else that
    escapes is a bug of ours and keeps its traceback.
    """
