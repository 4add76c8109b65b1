"""Data: PYSKL-exact skeleton transforms, NTU parsing, TFDS builders and the input pipeline."""
