"""Pastiches: the optimiser of Gatys et al. 2016 behind ``artspace transfer`` and ``artspace reconstruct``.

>>> from artspace.transfer import synthesise, TransferOptions                       # doctest: +SKIP
>>> synthesise("tubingen.jpg", "starry_night.jpg", size=256, output="out.png")      # doctest: +SKIP
>>> synthesise("tubingen.jpg", "starry_night.jpg", options=TransferOptions(scales=2))  # doctest: +SKIP

One module per concern:

* :mod:`~artspace.transfer.options` — :class:`TransferOptions`, every option with its default and allowed values;
* :mod:`~artspace.transfer.inputs` — the images a run reads and the files it writes, checked before any work;
* :mod:`~artspace.transfer.memory` — what a run needs, and advice when it does not fit;
* :mod:`~artspace.transfer.pyramid`, :mod:`~artspace.transfer.tiles` — coarse-to-fine levels, and tiles;
* :mod:`~artspace.transfer.objective` — the loss and its style targets;
* :mod:`~artspace.transfer.optim` — bounded L-BFGS, Adam, and the run with its restarts;
* :mod:`~artspace.transfer.colour` — colour preservation and histogram matching (Gatys et al. 2017);
* :mod:`~artspace.transfer.result` — :class:`TransferResult` and its sidecar;
* :mod:`~artspace.transfer.synthesis` — :func:`synthesise`, :func:`transfer`, :func:`reconstruct`,
  :func:`reconstruct_layers`.
"""

from __future__ import annotations

from ..lazy import exports

# Names load their module on first use (PEP 562), as in the artspace package: the command line reads its help texts
# from the options module on every start, and that module needs no torch, so neither may importing this package.
_WHERE = {
    "options": ["TransferOptions", "DEFAULT_CONTENT_LAYERS", "DEFAULT_STYLE_LAYERS", "DEFAULT_STYLE_WEIGHT",
                "OPTIMIZERS", "INITS"],
    "result": ["TransferResult"],
    "synthesis": ["synthesise", "transfer", "reconstruct", "reconstruct_layers"],
    "tiles": ["tile_grid"],
    "memory": ["estimate_memory", "available_memory"],
    "inputs": ["sidecar_path"],
    "colour": ["preserve_colors", "match_histograms"],
}
__all__, __getattr__, __dir__ = exports(__name__, _WHERE)
