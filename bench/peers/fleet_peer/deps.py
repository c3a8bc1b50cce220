"""numpy and torch where installed: parsing, validation and the self-test run without torch."""
try:
    import numpy as np
except ImportError:  # the self-test's pure-Python half still runs
    np = None

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # parsing, validation and the self-test do not need it
    torch = nn = F = None
