"""Alias of ``secretkit.drivers.files.kubelet``, where the kubelet volume harness lives beside
the ``files://`` driver it serves. Kept because docs/testing.md listed it under
``secretkit.testing``; new code imports ``secretkit.drivers.files.kubelet``."""

from secretkit.drivers.files.kubelet import (
    DATA_DIR,
    STEPS,
    KubeletVolume,
    generation_of,
    generation_payload,
    swap_while_reading,
)

__all__ = ["DATA_DIR", "STEPS", "KubeletVolume", "generation_of", "generation_payload", "swap_while_reading"]
