"""Pastiches (Gatys et al. 2016): the optimiser behind ``artspace transfer`` and ``artspace reconstruct``."""

from .synthesis import *  # noqa: F401,F403
from .synthesis import __all__  # noqa: F401
