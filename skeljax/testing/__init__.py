"""Code that the tests and the development scripts in `scripts/` share; nothing in the rest of skeljax imports it.

- `torch_reference`, `torch_reference_original`: the PyTorch reference networks of the parity tests and benchmarks
  (MMAction2 1.2.0's STGCN for PYSKL, MMAction2 0.x's and the original ST-GCN written after their code) and
  released-format checkpoint writers. They import torch and MMAction2: `pip install -e ".[test]"`.
- `benchmarking`: what the benchmark scripts share (malloc settings, the machine description, timing, Markdown
  tables and the pages they write in `docs/`).
- `workloads`: the programs and loops the benchmarks time, built the way the package builds them.
- `matmul_floor`: the matrix-product floor of a compiled XLA program.

Importing this package imports none of them.
"""
