"""The data layer's one error a user sees."""


class DatasetError(ValueError):
    """An import or a load that cannot go on; the message says what to do, fit to print to a user."""
