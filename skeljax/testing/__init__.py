"""Code that the tests and the development scripts in `scripts/` share; nothing in the rest of skeljax imports it.

- `torch_reference`, `torch_reference_original`: the PyTorch reference networks of the parity tests and benchmarks
  (MMAction2 1.2.0's STGCN for PYSKL, MMAction2 0.x's and the original ST-GCN written after their code) and
  released-format checkpoint writers. They import torch and MMAction2: `pip install -e ".[test]"`.
- `benchmarking`: what the benchmark scripts share (malloc settings, the machine description, timing, Markdown
  tables and the pages they write in `docs/`).
- `workloads`: the programs and loops the benchmarks time, built the way the package builds them.
- `matmul_floor`: the matrix-product floor of a compiled XLA program.
- `pose_fixtures`: the offline pose model (a mediapipe `.task` built from the mediapipe 0.10.21 wheel's models) and
  video clips made from a photograph, for the video tests and `scripts/make_pose_fixtures.py`.

Importing this package imports none of them.
"""
