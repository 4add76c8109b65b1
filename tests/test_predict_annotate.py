"""skeljax.predict.annotate: the annotated video of `--video FILE --out`: frame count and size of the MP4 / GIF
written, bones drawn in the track's colour where the joints are, the caption of the window covering each frame,
per-person labels, and bad outputs refused with nothing written."""

import numpy as np
import pytest

from skeljax import layouts
from skeljax.predict import annotate as A
from skeljax.visualize import RenderError

cv2 = pytest.importorskip("cv2", reason="the annotated video needs OpenCV (pip install 'skeljax[video]')")

H, W, T = 360, 640, 12
GREY = 200
ORANGE = (255, 127, 14)  # visualize.COLORS[1]: track 1


def one_bone(track: int = 1):
    """An annotation with one visible bone: joints i and j of a COCO-17 edge, at (120, 180) and (520, 180)."""
    i, j = layouts.get("coco").inward[0]
    kp = np.zeros((1, T, 17, 2), np.float32)
    score = np.zeros((1, T, 17), np.float32)
    kp[0, :, i], kp[0, :, j] = (120, 180), (520, 180)
    score[0, :, [i, j]] = 1.0
    return {"keypoint": kp, "keypoint_score": score, "track_ids": [track]}


def frames(n: int = T):
    """Grey frames, each with its own shade in the bottom-right corner (a GIF merges identical frames)."""
    out = [np.full((H, W, 3), GREY, np.uint8) for _ in range(n)]
    for t, f in enumerate(out):
        f[-20:, -20:] = 10 * t
    return out


def decode(path):
    """Every frame of a video file as RGB, through OpenCV (GIFs through Pillow)."""
    if str(path).endswith(".gif"):
        from PIL import Image

        im, out = Image.open(path), []
        for k in range(im.n_frames):
            im.seek(k)
            out.append(np.asarray(im.convert("RGB")))
        return out
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return out
        out.append(bgr[..., ::-1])


def near(pixels, rgb, tol):
    return np.abs(pixels.astype(int) - np.asarray(rgb)).max(axis=-1) <= tol


def orange(pixels, exact: bool):
    """Track 1's colour: within 30 of it in a GIF (256 colours); in an MP4 (MPEG-4 stores colour at half resolution,
    so a thin line's colour blends with the grey around it) clearly red-before-blue where grey has R = B."""
    if exact:
        return near(pixels, ORANGE, 30)
    p = pixels.astype(int)
    return (p[..., 0] - p[..., 2] > 60) & (p[..., 0] > p[..., 1]) & (p[..., 1] > p[..., 2])


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_written_video_has_the_frames_and_the_bone(tmp_path, ext):
    path = tmp_path / f"out{ext}"
    n = A.write_annotated(path, frames(), one_bone(), [], fps=10)
    got = decode(path)
    assert n == T and len(got) == T and all(f.shape == (H, W, 3) for f in got)
    for f in got:
        on_bone = f[180, 140:501]  # the segment between the two joints, away from the joint dots
        assert orange(on_bone, ext == ".gif").mean() > 0.9
        assert near(f[250:330, 100:500], (GREY,) * 3, 12).all()  # nothing drawn below the person


def test_caption_per_frame_takes_the_nearest_window_centre():
    caps = [A.Caption(0, 10), A.Caption(6, 16), A.Caption(20, 24)]
    which = A.caption_per_frame(caps, 26)
    # centres 4.5 and 10.5: frames 0-7 nearer the first (7 is 2.5 from 4.5 vs 3.5), 8-15 the second; 16-19 none
    assert which[:8] == [0] * 8 and which[8:16] == [1] * 8
    assert which[16:20] == [None] * 4 and which[20:24] == [2] * 4 and which[24:] == [None, None]


def test_caption_box_only_where_a_window_covers_the_frame(tmp_path):
    path = tmp_path / "cap.gif"
    top5 = [{"index": 3, "label": "drink water", "prob": 0.87}]
    A.write_annotated(path, frames(), one_bone(), [A.Caption(0, 6, top5)], fps=10)
    got = decode(path)
    dark = [int(near(f[:30, :150], (0, 0, 0), 30).sum()) for f in got]  # the caption's black box, top left
    assert all(d > 200 for d in dark[:6]) and all(d == 0 for d in dark[6:])


def test_per_person_label_widens_the_id_box(tmp_path):
    """The id box above the person holds '#1' alone, or '#1 wave 50%' when the window has per-person predictions."""
    caption = A.Caption(0, T, None, {1: [{"index": 0, "label": "wave", "prob": 0.5}]})
    widths = []
    for caps in ([], [caption]):
        path = tmp_path / f"p{len(caps)}.gif"
        A.write_annotated(path, frames(), one_bone(), caps, fps=10)
        above = decode(path)[0][:174]  # the rows above the bone
        widths.append(int(near(above, ORANGE, 30).any(axis=0).sum()))
    assert 0 < widths[0] and widths[1] > 2 * widths[0]


def test_bad_outputs_write_nothing(tmp_path):
    with pytest.raises(RenderError, match=r"out\.avi: unknown output type '\.avi'"):
        A.write_annotated(tmp_path / "out.avi", frames(), one_bone(), [], fps=10)
    with pytest.raises(RenderError, match="no frame to write"):
        A.write_annotated(tmp_path / "none.mp4", [], one_bone(), [], fps=10)

    def broken():
        yield from frames(3)
        raise OSError("decoding stopped")

    with pytest.raises(OSError, match="decoding stopped"):
        A.write_annotated(tmp_path / "cut.mp4", broken(), one_bone(), [], fps=10)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary left behind


def test_captions_of_window_and_per_person_predictions():
    from types import SimpleNamespace as W

    top = [{"index": 1, "label": "wave", "prob": 0.9}]
    other = [{"index": 2, "label": "clap", "prob": 0.6}]
    assert A.captions_of([W(start=0, end=12, top5=top)]) == [A.Caption(0, 12, top)]
    people = [
        W(track=0, start=0, end=12, top5=top),
        W(track=3, start=0, end=12, top5=other),
        W(track=0, start=12, end=24, top5=other),
    ]
    assert A.captions_of(people) == [A.Caption(0, 12, None, {0: top, 3: other}), A.Caption(12, 24, None, {0: other})]
