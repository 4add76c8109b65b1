"""skeljax.visualize: GIFs of NTU 3D (two persons) and COCO 2D skeletons, frame counts, drawn persons, errors."""

import numpy as np
import pytest
from matplotlib import animation
from PIL import Image

from skeljax.data import generate_synthetic, save_annotations
from skeljax.visualize import RenderError, main, render_skeleton

BLUE, ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's tab:blue and tab:orange


def frames_of(path):
    """All frames of a GIF as RGB arrays."""
    im = Image.open(path)
    out = []
    for i in range(im.n_frames):
        im.seek(i)
        out.append(np.asarray(im.convert("RGB")))
    return out


def has_color(frame, rgb, tol=40, min_pixels=5):
    return int((np.abs(frame.astype(int) - rgb).sum(-1) < tol).sum()) >= min_pixels


@pytest.fixture(scope="module")
def ntu_two_person():
    a = generate_synthetic(2, seed=0)["annotations"][12]  # 'push other person': two persons
    kp = a["keypoint"][:, :12].astype(np.float32)
    assert kp.shape == (2, 12, 25, 3)
    kp[1, 8:] = 0  # the second person leaves for the last four frames
    return kp


def test_ntu_two_persons_gif(tmp_path, ntu_two_person):
    path = tmp_path / "ntu.gif"
    n = render_skeleton(ntu_two_person, path, layout="nturgb+d", title="push other person (97%)", fps=10)
    assert n == 12 and path.stat().st_size > 0
    frames = frames_of(path)
    assert len(frames) == 12 and frames[0].shape[0] > 100 and frames[0].shape[1] > 100
    assert all(has_color(f, BLUE) for f in frames)
    assert all(has_color(f, ORANGE) for f in frames[:8])
    assert not any(has_color(f, ORANGE) for f in frames[8:])  # all-zero joints are not drawn


def test_single_person_txyz_and_step(tmp_path, ntu_two_person):
    path = tmp_path / "one.gif"
    assert render_skeleton(ntu_two_person[0], path, layout="nturgb+d", step=5) == 3  # frames 0, 5, 10
    frames = frames_of(path)
    assert len(frames) == 3 and not any(has_color(f, ORANGE) for f in frames)


def test_coco_with_scores(tmp_path):
    a = generate_synthetic(2, seed=0, kind="2d")["annotations"][0]
    kp, score = a["keypoint"][:, :10], a["keypoint_score"][:, :10].copy()
    path = tmp_path / "coco.gif"
    assert render_skeleton(kp, path, layout="coco", keypoint_score=score, title="raise left hand") == 10
    frames = frames_of(path)
    assert len(frames) == 10 and all(has_color(f, BLUE) for f in frames)
    # scores below min_score hide the joints: frames 3.. vanish; the score may also come as a third channel
    score[:, 3:] = 0.05
    hidden = tmp_path / "hidden.gif"
    render_skeleton(np.concatenate([kp, score[..., None]], -1), hidden, layout="coco")
    frames = frames_of(hidden)
    assert has_color(frames[0], BLUE) and not any(has_color(f, BLUE) for f in frames[3:])


def test_mp4_needs_ffmpeg(tmp_path, ntu_two_person):
    path = tmp_path / "clip.mp4"
    if animation.writers.is_available("ffmpeg"):
        assert render_skeleton(ntu_two_person, path, layout="nturgb+d") == 12 and path.stat().st_size > 0
    else:
        with pytest.raises(RenderError, match=r"clip.mp4: writing MP4 needs the ffmpeg program"):
            render_skeleton(ntu_two_person, path, layout="nturgb+d")
        assert not path.exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"path": "x.png"}, "x.png: unknown output type '.png'"),
        ({"layout": "coco"}, r"expected keypoints \(M, T, 17, C\) for layout 'coco', got \(2, 12, 25, 3\)"),
        ({"layout": "hand"}, "unknown layout 'hand'"),
        ({"step": 0}, "step must be a positive integer"),
    ],
)
def test_errors(tmp_path, ntu_two_person, kwargs, message):
    args = {"path": "x.gif", "layout": "nturgb+d", **kwargs}
    with pytest.raises(RenderError, match=message):
        render_skeleton(ntu_two_person, tmp_path / args.pop("path"), **args)


def test_cli_from_annotation_pickle(tmp_path, capsys):
    data = generate_synthetic(2, seed=0, kind="2d")
    for a in data["annotations"]:
        a["keypoint"], a["keypoint_score"] = a["keypoint"][:, :9], a["keypoint_score"][:, :9]
        a["total_frames"] = 9
    save_annotations(tmp_path / "a.pkl", data)
    name = data["annotations"][3]["frame_dir"]
    out = tmp_path / "s.gif"
    assert main(["--input", str(tmp_path / "a.pkl"), "--sample", name, "--out", str(out), "--step", "2"]) == 0
    assert "5 frames" in capsys.readouterr().out
    assert Image.open(out).n_frames == 5
    assert main(["--input", str(tmp_path / "a.pkl"), "--out", str(tmp_path / "s.webm")]) == 1
    assert "s.webm: unknown output type" in capsys.readouterr().err


def test_long_titles_are_wrapped_to_the_figure_width():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from skeljax.visualize import TITLE_PT, title_lines

    title = "S001C001P001R001A001_a_rather_long_sample_name: take off a hat/cap (93%)\nground truth: put on a hat/cap"
    for size in (3.0, 4.0, 6.0):
        lines = title_lines(title, size)
        assert len(lines) >= 2 and " ".join(lines).replace(" ", "") == title.replace("\n", "").replace(" ", "")
        fig = Figure(figsize=(size, size), dpi=80)
        canvas = FigureCanvasAgg(fig)
        renderer = canvas.get_renderer()
        for line in lines:  # measured with matplotlib itself: every line fits inside the figure
            text = fig.text(0.5, 0.5, line, ha="center", fontsize=TITLE_PT)
            box = text.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= size * 80, (size, line, box)
    assert title_lines(None, 4.0) == [] and title_lines("", 4.0) == []
