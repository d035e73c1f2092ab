__version__ = "0.0.1"

import warnings
# fastai 2.8 compiles a few layers with `torch.jit.script` when it is imported, and torch >= 2.10 warns that this is deprecated:
# nothing a learner can act on, so it is silenced here, before any lesson or module imports fastai.
warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
