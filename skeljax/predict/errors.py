"""The one error type of prediction, shared by its settings, input readers, predictor and command line."""


class PredictError(ValueError):
    """A user error: a missing or unreadable input, a layout the checkpoint cannot take, conflicting options."""
