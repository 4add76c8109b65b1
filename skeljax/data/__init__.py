"""Data: PYSKL-exact skeleton transforms, NTU and Kinetics-skeleton parsing, TFDS builders and the input pipeline."""

# Re-exports: the public data API.
from skeljax.data.annotations import (  # noqa: F401
    AnnotationError,
    load_annotations,
    save_annotations,
    validate_annotations,
)
from skeljax.data.kinetics import (  # noqa: F401
    KINETICS400_CLASSES,
    KineticsSkeletonError,
    read_kinetics_skeleton,
    read_label_file,
)
from skeljax.data.ntu_meta import (  # noqa: F401
    NTU60_CLASSES,
    NTU120_CLASSES,
    make_split,
    parse_ntu_name,
)
from skeljax.data.ntu_raw import (  # noqa: F401
    EmptySkeletonError,
    SkeletonFormatError,
    convert_folder,
    read_ntu_skeleton,
    read_ntu_skeleton_mmaction0x,
)
from skeljax.data.pipelines import Pipeline, make_pipeline, make_rng  # noqa: F401
from skeljax.data.synthetic import SYNTHETIC_CLASSES, generate_synthetic, synthetic_annotation  # noqa: F401
from skeljax.data.transforms import (  # noqa: F401
    CheckLayout,
    FormatGCNInput,
    FormatNCTVM,
    GenSkeFeat,
    NCTVMToModel,
    OriginalKineticsInput,
    PaddingWithLoop,
    PadTo,
    PoseDecode,
    PoseNormalize,
    PreNormalize2D,
    PreNormalize3D,
    RandomChoose,
    RandomMove,
    UniformSample,
    joint_to_bone,
    to_motion,
)
# TFDS builders (skeljax.data.tfds_builders) and the grain pipeline (skeljax.data.input_pipeline) are not
# re-exported: they pull in tensorflow_datasets and grain, import them where needed.
