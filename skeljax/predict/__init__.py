"""Predict actions for your own skeletons with one checkpoint or a multi-stream fusion of several.

    skeljax-predict --checkpoint CKPT --input FILE    (also `python -m skeljax.predict`; `--help` says all)

The package, by what its modules hold:

- `settings`: a model's test settings (layout, feat, recipe, clips, averaging, class names), the one place that
  writes them (trainer exports, skeljax-convert, `zoo get`) and reads them back (prediction);
- `inputs`: the file readers (`.skeleton`, `.npy`, annotation `.pkl`, MMPose / OpenPose / Kinetics-skeleton `.json`);
- `predictor`: `Predictor`, `load_predictor`, `predict` and its fusion (`Prediction`), text and JSON output;
- `windows`: `predict_windows`, one prediction per window of frames of a long sequence;
- `live`: `stream`, live prediction from a camera, a stream URL or a file played as if live (`--stream`);
- `annotate`: the annotated video of `--video --out` (skeletons, track ids and labels drawn on the frames);
- `cli`: the argparse command line (`main`).
"""

from skeljax.predict.cli import build_parser, main
from skeljax.predict.errors import PredictError
from skeljax.predict.inputs import DEFAULT_IMG_SHAPE, INPUT_EXTENSIONS, array_annotation, check_sample, read_input
from skeljax.predict.live import stream
from skeljax.predict.predictor import (
    AVERAGES,
    ROWS_PER_CALL,
    Prediction,
    Predictor,
    as_predictors,
    format_json,
    format_text,
    from_model,
    load_predictor,
    predict,
    report_tracks,
    softmax,
)
from skeljax.predict.settings import (
    LABEL_SETS,
    class_names_for,
    complete_settings,
    default_recipe,
    overridden,
    run_config_meta,
)
from skeljax.predict.windows import (
    WindowPrediction,
    format_windows,
    predict_windows,
    window_annotation,
    window_spans,
)

__all__ = [
    "AVERAGES",
    "DEFAULT_IMG_SHAPE",
    "INPUT_EXTENSIONS",
    "LABEL_SETS",
    "ROWS_PER_CALL",
    "PredictError",
    "Prediction",
    "Predictor",
    "WindowPrediction",
    "array_annotation",
    "as_predictors",
    "build_parser",
    "check_sample",
    "class_names_for",
    "complete_settings",
    "default_recipe",
    "format_json",
    "format_text",
    "format_windows",
    "from_model",
    "load_predictor",
    "main",
    "overridden",
    "predict",
    "predict_windows",
    "read_input",
    "report_tracks",
    "run_config_meta",
    "softmax",
    "stream",
    "window_annotation",
    "window_spans",
]
