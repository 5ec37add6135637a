"""Reading a PyTorch weight file (a state dict) into numpy arrays, without running its code.

The weight converters of :mod:`jaxgan.vgg` and :mod:`jaxgan.eval.inception` read their ``.pth``
files here, with :func:`read_state_dict`, and write ``.npz`` files that the rest of jaxgan loads
with ``np.load(allow_pickle=False)``. PyTorch is needed for that one step only; it is imported
inside :func:`read_state_dict` and nowhere else in jaxgan, so jaxgan neither depends on it nor
pays for importing it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def read_state_dict(torch_path: str, *, purpose: str) -> dict[str, np.ndarray]:
  """The tensors of the PyTorch state dict in ``torch_path``, as numpy arrays.

  The file is read with ``torch.load(torch_path, map_location='cpu', weights_only=True)``:
  PyTorch's restricted unpickler, which builds tensors and plain containers (dicts, lists,
  numbers, strings) only, runs no code from the file and refuses a file that names any other
  global (e.g. a pickled function); tensors saved on a GPU are loaded onto the CPU. Each entry
  with a ``detach`` method (a tensor) becomes ``v.detach().cpu().numpy()``, of the tensor's
  shape and dtype; any other entry is dropped.

  Args:
    torch_path: a file written by ``torch.save(state_dict, torch_path)``.
    purpose: what needs PyTorch, for the ImportError, e.g. ``'converting torchvision weights'``.

  Returns:
    ``{name: array}`` of the tensor entries, in the file's order.

  Raises:
    ImportError: without PyTorch: ``'<purpose> needs PyTorch (pip install torch); the converted
      .npz then loads without it'``.
    ValueError: the file holds something other than a mapping (``'<torch_path> holds a list,
      not a state dict'``).
    Whatever ``torch.load`` raises: e.g. ``FileNotFoundError``, or ``pickle.UnpicklingError``
      for a file that needs more than the restricted unpickler allows.
  """
  try:
    import torch
  except ImportError:
    raise ImportError(f'{purpose} needs PyTorch (pip install torch); the converted .npz then '
                      'loads without it') from None
  state = torch.load(torch_path, map_location='cpu', weights_only=True)
  if not isinstance(state, Mapping):
    raise ValueError(f'{torch_path} holds a {type(state).__name__}, not a state dict')
  return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, 'detach')}
