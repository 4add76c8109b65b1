"""NTU RGB+D sample names, benchmark splits, missing-skeleton lists and action class names."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources

# Subjects of the cross-subject training set (NTU RGB+D 120 paper); NTU-60 uses the ones <= 40.
XSUB_TRAIN_SUBJECTS = frozenset(
    (
        1,
        2,
        4,
        5,
        8,
        9,
        13,
        14,
        15,
        16,
        17,
        18,
        19,
        25,
        27,
        28,
        31,
        34,
        35,
        38,
        45,
        46,
        47,
        49,
        50,
        52,
        53,
        54,
        55,
        56,
        57,
        58,
        59,
        70,
        74,
        78,
        80,
        81,
        82,
        83,
        84,
        85,
        86,
        89,
        91,
        92,
        93,
        94,
        95,
        97,
        98,
        100,
        103,
    )
)
XVIEW_TRAIN_CAMERAS = frozenset((2, 3))
NTU60_MAX_SETUP = 17  # NTU RGB+D 60 is setups S001-S017 with actions A001-A060.

BENCHMARK_SPLITS = {
    "ntu60": ("xsub_train", "xsub_val", "xview_train", "xview_val"),
    "ntu120": ("xsub_train", "xsub_val", "xset_train", "xset_val"),
}

_NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

# Official action names (shahroudy/NTURGB-D README), index i is action A(i+1), i.e. label i.
NTU120_CLASSES = (
    "drink water",  # A001
    "eat meal/snack",  # A002
    "brushing teeth",  # A003
    "brushing hair",  # A004
    "drop",  # A005
    "pickup",  # A006
    "throw",  # A007
    "sitting down",  # A008
    "standing up (from sitting position)",  # A009
    "clapping",  # A010
    "reading",  # A011
    "writing",  # A012
    "tear up paper",  # A013
    "wear jacket",  # A014
    "take off jacket",  # A015
    "wear a shoe",  # A016
    "take off a shoe",  # A017
    "wear on glasses",  # A018
    "take off glasses",  # A019
    "put on a hat/cap",  # A020
    "take off a hat/cap",  # A021
    "cheer up",  # A022
    "hand waving",  # A023
    "kicking something",  # A024
    "reach into pocket",  # A025
    "hopping (one foot jumping)",  # A026
    "jump up",  # A027
    "make a phone call/answer phone",  # A028
    "playing with phone/tablet",  # A029
    "typing on a keyboard",  # A030
    "pointing to something with finger",  # A031
    "taking a selfie",  # A032
    "check time (from watch)",  # A033
    "rub two hands together",  # A034
    "nod head/bow",  # A035
    "shake head",  # A036
    "wipe face",  # A037
    "salute",  # A038
    "put the palms together",  # A039
    "cross hands in front (say stop)",  # A040
    "sneeze/cough",  # A041
    "staggering",  # A042
    "falling",  # A043
    "touch head (headache)",  # A044
    "touch chest (stomachache/heart pain)",  # A045
    "touch back (backache)",  # A046
    "touch neck (neckache)",  # A047
    "nausea or vomiting condition",  # A048
    "use a fan (with hand or paper)/feeling warm",  # A049
    "punching/slapping other person",  # A050
    "kicking other person",  # A051
    "pushing other person",  # A052
    "pat on back of other person",  # A053
    "point finger at the other person",  # A054
    "hugging other person",  # A055
    "giving something to other person",  # A056
    "touch other person's pocket",  # A057
    "handshaking",  # A058
    "walking towards each other",  # A059
    "walking apart from each other",  # A060
    "put on headphone",  # A061
    "take off headphone",  # A062
    "shoot at the basket",  # A063
    "bounce ball",  # A064
    "tennis bat swing",  # A065
    "juggling table tennis balls",  # A066
    "hush (quite)",  # A067
    "flick hair",  # A068
    "thumb up",  # A069
    "thumb down",  # A070
    "make ok sign",  # A071
    "make victory sign",  # A072
    "staple book",  # A073
    "counting money",  # A074
    "cutting nails",  # A075
    "cutting paper (using scissors)",  # A076
    "snapping fingers",  # A077
    "open bottle",  # A078
    "sniff (smell)",  # A079
    "squat down",  # A080
    "toss a coin",  # A081
    "fold paper",  # A082
    "ball up paper",  # A083
    "play magic cube",  # A084
    "apply cream on face",  # A085
    "apply cream on hand back",  # A086
    "put on bag",  # A087
    "take off bag",  # A088
    "put something into a bag",  # A089
    "take something out of a bag",  # A090
    "open a box",  # A091
    "move heavy objects",  # A092
    "shake fist",  # A093
    "throw up cap/hat",  # A094
    "hands up (both hands)",  # A095
    "cross arms",  # A096
    "arm circles",  # A097
    "arm swings",  # A098
    "running on the spot",  # A099
    "butt kicks (kick backward)",  # A100
    "cross toe touch",  # A101
    "side kick",  # A102
    "yawn",  # A103
    "stretch oneself",  # A104
    "blow nose",  # A105
    "hit other person with something",  # A106
    "wield knife towards other person",  # A107
    "knock over other person (hit with body)",  # A108
    "grab other person’s stuff",  # A109
    "shoot at other person with a gun",  # A110
    "step on foot",  # A111
    "high-five",  # A112
    "cheers and drink",  # A113
    "carry something with other person",  # A114
    "take a photo of other person",  # A115
    "follow other person",  # A116
    "whisper in other person’s ear",  # A117
    "exchange things with other person",  # A118
    "support somebody with hand",  # A119
    "finger-guessing game (playing rock-paper-scissors)",  # A120
)
NTU60_CLASSES = NTU120_CLASSES[:60]


def parse_ntu_name(name: str) -> dict[str, int]:
    """Splits 'SsssCcccPpppRrrrAaaa' (optionally with a path or extension) into its five numbers."""
    stem = str(name).replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    m = _NAME_RE.match(stem)
    if m is None:
        raise ValueError(f"{name!r} is not an NTU RGB+D sample name of the form SsssCcccPpppRrrrAaaa")
    keys = ("setup", "camera", "performer", "replication", "action")
    return dict(zip(keys, (int(g) for g in m.groups())))


def ntu_label(name: str) -> int:
    """0-based class label of a sample name (action number - 1)."""
    return parse_ntu_name(name)["action"] - 1


def is_ntu60(name: str) -> bool:
    """Whether the sample belongs to NTU RGB+D 60 (setups 1-17, actions 1-60)."""
    p = parse_ntu_name(name)
    return p["setup"] <= NTU60_MAX_SETUP and p["action"] <= 60


def is_xsub_train(name: str) -> bool:
    """Cross-subject rule: the performer is one of the training subjects."""
    return parse_ntu_name(name)["performer"] in XSUB_TRAIN_SUBJECTS


def is_xview_train(name: str) -> bool:
    """Cross-view rule (NTU-60): cameras 2 and 3 train, camera 1 validates."""
    return parse_ntu_name(name)["camera"] in XVIEW_TRAIN_CAMERAS


def is_xset_train(name: str) -> bool:
    """Cross-setup rule (NTU-120): even setup numbers train, odd ones validate."""
    return parse_ntu_name(name)["setup"] % 2 == 0


@functools.cache
def ntu120_missing() -> frozenset[str]:
    """The 535 NTU-120 samples with missing or empty skeletons (PYSKL's tools/data/ntu120_missing.txt)."""
    text = resources.files("skeljax.data").joinpath("ntu120_missing.txt").read_text(encoding="ascii")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


@functools.cache
def ntu60_missing() -> frozenset[str]:
    """The 302 NTU-60 samples with missing skeletons (NTU_RGBD_samples_with_missing_skeletons.txt)."""
    # The official NTU-60 list is exactly the NTU-120 list restricted to setups 1-17 (checked against
    # shahroudy/NTURGB-D), so one data file serves both.
    return frozenset(n for n in ntu120_missing() if parse_ntu_name(n)["setup"] <= NTU60_MAX_SETUP)


def missing_samples(benchmark: str) -> frozenset[str]:
    """Missing-skeleton list for 'ntu60' or 'ntu120'."""
    _check_benchmark(benchmark)
    return ntu60_missing() if benchmark == "ntu60" else ntu120_missing()


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in BENCHMARK_SPLITS:
        raise ValueError(f"unknown NTU benchmark {benchmark!r}; expected one of {sorted(BENCHMARK_SPLITS)}")


def select_samples(frame_dirs: Iterable[str], benchmark: str) -> list[str]:
    """Names of the benchmark's dataset (NTU-60: S001-S017/A001-A060), minus missing samples, order kept."""
    _check_benchmark(benchmark)
    missing = missing_samples(benchmark)
    names = [n for n in frame_dirs if n not in missing]
    if benchmark == "ntu60":
        names = [n for n in names if is_ntu60(n)]
    else:
        for n in names:
            parse_ntu_name(n)  # reject foreign names early, with the name in the message
    return names


def make_split(frame_dirs: Iterable[str], benchmark: str) -> dict[str, list[str]]:
    """PYSKL's split dict ({'xsub_train': [...], ...}) for 'ntu60' or 'ntu120', missing samples excluded."""
    names = select_samples(frame_dirs, benchmark)
    xsub = [is_xsub_train(n) for n in names]
    split = {
        "xsub_train": [n for n, t in zip(names, xsub) if t],
        "xsub_val": [n for n, t in zip(names, xsub) if not t],
    }
    other, rule = ("xview", is_xview_train) if benchmark == "ntu60" else ("xset", is_xset_train)
    flags = [rule(n) for n in names]
    split[f"{other}_train"] = [n for n, t in zip(names, flags) if t]
    split[f"{other}_val"] = [n for n, t in zip(names, flags) if not t]
    return split
