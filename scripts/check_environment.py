"""Does this Python have what skeljax (and, with --reference, the benchmarks' PyTorch reference) needs?

    python scripts/check_environment.py [--reference] [--require-gpu]

Prints each requirement of setup.cfg with the installed version and whether it is in the tested range, JAX's
backend and devices, then imports the modules a training run loads (the trainer, the TFDS builders, grain's
workers) and, with --reference, builds MMAction2's STGCN on the accelerator. Exit status 1 names what is missing
or out of range, so a run on a borrowed GPU host fails in seconds instead of minutes into a benchmark.
"""

from __future__ import annotations

import argparse
import configparser
import importlib
import importlib.metadata
import pathlib
import sys

from packaging.requirements import Requirement

REPO = pathlib.Path(__file__).resolve().parents[1]
# What a training run and the benchmarks import beyond the requirements' own top-level modules.
RUN_MODULES = ("skeljax.main", "skeljax.train", "skeljax.data.tfds_builders", "tensorflow_datasets", "grain")
REFERENCE_REQUIREMENTS = ("torch", "mmaction2", "mmcv-lite", "mmengine")


def setup_requirements(extra_names: tuple[str, ...] = ()) -> list[Requirement]:
    """install_requires of setup.cfg, plus the named requirements of its test extra."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")

    def parse(text: str) -> list[Requirement]:
        lines = (line.split("#")[0].strip() for line in text.splitlines())
        return [Requirement(line) for line in lines if line]

    requirements = parse(parser["options"]["install_requires"])
    test_extra = {req.name: req for req in parse(parser["options.extras_require"]["test"])}
    return requirements + [test_extra[name] for name in extra_names]


def check_versions(requirements: list[Requirement]) -> list[str]:
    problems = []
    for req in requirements:
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            print(f"  {req.name:24s} MISSING (wanted {req.specifier})")
            problems.append(f"{req.name} is not installed")
            continue
        in_range = req.specifier.contains(version, prereleases=True)
        # Outside the tested range is worth knowing but not fatal: a newer image may still work.
        print(f"  {req.name:24s} {version:14s} {'ok' if in_range else f'outside the tested range {req.specifier}'}")
    return problems


def check_imports(modules: tuple[str, ...]) -> list[str]:
    problems = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001  any failure to import is what this reports
            problems.append(f"import {name}: {type(error).__name__}: {error}")
    return problems


def check_reference_model(on_gpu: bool) -> list[str]:
    try:
        import torch

        from skeljax.testing import torch_reference

        model = torch_reference.build_pyskl_recognizer("stgcnpp", "nturgb+d", num_classes=60)
        device = "cuda" if on_gpu else "cpu"
        x = torch_reference.make_inputs("nturgb+d", n=2, t=16).to(device)
        model.to(device).eval()
        with torch.inference_mode():
            logits = model(x)
        print(f"  reference STGCN on {device}: logits {tuple(logits.shape)}")
        return []
    except Exception as error:  # noqa: BLE001
        return [f"the PyTorch reference model: {type(error).__name__}: {error}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="store_true", help="also check torch, MMAction2 and its STGCN")
    parser.add_argument("--require-gpu", action="store_true", help="fail unless JAX (and torch) compute on a GPU")
    args = parser.parse_args(argv)

    print(f"Python {sys.version.split()[0]} at {sys.executable}")
    print("Requirements (setup.cfg):")
    problems = check_versions(setup_requirements(REFERENCE_REQUIREMENTS if args.reference else ()))
    if problems:  # imports would only repeat the missing packages
        return report(problems)

    import jax

    backend = jax.default_backend()
    print(f"JAX backend {backend}: {jax.devices()}")
    if args.require_gpu and backend != "gpu":
        problems.append(f"JAX computes on {backend}, not a GPU (is jax's CUDA plugin installed?)")
    problems += check_imports(RUN_MODULES)
    if args.reference:
        import torch

        print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
        if args.require_gpu and not torch.cuda.is_available():
            problems.append("torch sees no CUDA device")
        problems += check_reference_model(on_gpu=torch.cuda.is_available())
    return report(problems)


def report(problems: list[str]) -> int:
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("environment: ok" if not problems else f"environment: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
