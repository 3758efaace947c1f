"""Evaluation of ONE copy on a whole split in one compiled call, and the padded batches it reads
(split out of `jaxml.training`, whose steps and optimizers it shares: `EvalInputs`,
`model_inputs`, `cross_entropy`)."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxml.data import pipeline
from jaxml.errors import ConfigError
from jaxml.population import CopyState
from jaxml.training import EvalInputs, _axis_slice, cross_entropy, model_inputs


def make_eval_step(model, *, num_classes: int, resolution: int, dtype, data_axis=None) -> Callable:
  """Returns `eval_step(state, inputs: EvalInputs) -> {'accuracy', 'loss', 'accuracy_halves',
  'loss_halves'}` for ONE copy.

  All batches of a split in one call (`lax.scan`); `mask` marks real examples in the padded
  last batch, so accuracy is exact for any split size. The halves ([2]: the even and the odd
  positions of every batch, two disjoint halves of the split) let a controller tell a copy's
  quality from val sampling noise (`jaxml.trunks.reward_signal_noise`).
  """

  def eval_step(state: CopyState, inputs: EvalInputs):
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    extra = model_inputs(inputs.hparams)

    def body(totals, batch):
      x, y, m = (_axis_slice(b, data_axis) for b in batch)
      x = pipeline.normalize(x, dtype, resolution)
      logits = model.apply(variables, x, train=False, **extra)
      odd = jnp.arange(m.shape[0]) % 2
      halves = jnp.stack([m * (1 - odd), m * odd])  # [2, batch]
      hit = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
      loss = cross_entropy(logits, y, num_classes)
      new = (halves @ hit, halves @ loss, jnp.sum(halves, -1))
      return tuple(t + n for t, n in zip(totals, new)), None

    zero = jnp.zeros((2,), jnp.float32)
    batches = (inputs.images, inputs.labels, inputs.mask)
    (correct, loss, count), _ = jax.lax.scan(body, (zero, zero, zero), batches)
    if data_axis is not None:
      correct, loss, count = jax.lax.psum((correct, loss, count), data_axis)
    total = jnp.sum(count)
    return {
      "accuracy": jnp.sum(correct) / total,
      "loss": jnp.sum(loss) / total,
      "accuracy_halves": correct / jnp.maximum(count, 1.0),
      "loss_halves": loss / jnp.maximum(count, 1.0),
    }

  return eval_step


def eval_batches(images, labels, batch_size: int) -> tuple[Any, Any, Any]:
  """Pads a split to whole batches: (images[nb,bs,...], labels[nb,bs], mask[nb,bs])."""
  import numpy as np

  n = images.shape[0]
  if n == 0:
    raise ConfigError("cannot evaluate on an empty split (check data.val_size)")
  nb = -(-n // batch_size)
  pad = nb * batch_size - n
  images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
  labels = np.concatenate([labels, np.zeros((pad,), labels.dtype)])
  mask = np.concatenate([np.ones((n,), np.float32), np.zeros((pad,), np.float32)])
  return (
    images.reshape(nb, batch_size, *images.shape[1:]),
    labels.reshape(nb, batch_size),
    mask.reshape(nb, batch_size),
  )
