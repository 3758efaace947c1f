"""Score K paths of a supernet in one compiled call, with per-path BatchNorm recalibration.

SPOS (Guo et al., ECCV 2020, Sec. 3.3; official src/Search/tester.py): before a candidate is
evaluated with the supernet's weights, its BN statistics are re-estimated: running mean and
variance reset (0 and 1), then ~200 training batches of 128 forwarded in train mode without
gradients, with PyTorch's `momentum=None` (the running value is the cumulative average of the
batch statistics), then the validation batches evaluated with those statistics. The supernet's
own running statistics average over every path trained and fit no single path.

Here one call `score(variables, encodings [K, L], calib_images, eval_data)` does this for all K
paths: `jax.vmap` over the encodings with the weights NOT mapped (the K paths share one copy
of the parameters; XLA sees every conv with a K-times larger batch), each path with its own BN
statistics. `paths_per_chunk` bounds memory (`lax.map` over chunks of vmapped paths, still one
call). Flax's BN keeps an exponential average, new = m * old + (1 - m) * batch; the cumulative
average is recovered exactly by mean_t = old + (new - old) / ((1 - m) t) after batch t (m is
read from the network's BatchNorm modules).

The evaluator is a callback, `evaluator(predict, eval_data) -> {name: scalar}`, where
`predict(x)` runs the path with its recalibrated statistics on normalised inputs: the default
`classification_evaluator` returns accuracy and loss over padded batches
(`evaluation.eval_batches`); a detection evaluator (DetNAS) would plug in the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxml.data import pipeline
from jaxml.errors import ConfigError
from jaxml.training import cross_entropy

Evaluator = Callable[[Callable, object], dict]


def classification_evaluator(num_classes: int, resolution: int | None, dtype=jnp.float32):
  """`evaluator(predict, (images u8 [nb, bs, ...], labels [nb, bs], mask [nb, bs]))` ->
  {'accuracy', 'loss'} over the real (mask 1) examples, all batches in one `lax.scan`."""

  def evaluate(predict, data):
    def body(totals, batch):
      x, y, m = batch
      logits = predict(pipeline.normalize(x, dtype, resolution))
      correct = jnp.sum((jnp.argmax(logits, -1) == y) * m)
      loss = jnp.sum(cross_entropy(logits, y, num_classes) * m)
      return (totals[0] + correct, totals[1] + loss, totals[2] + jnp.sum(m)), None

    zero = jnp.zeros((), jnp.float32)
    (correct, loss, count), _ = jax.lax.scan(body, (zero, zero, zero), data)
    return {"accuracy": correct / count, "loss": loss / count}

  return evaluate


def bn_momentum(net, variables, x, encoding) -> float | None:
  """The momentum of `net`'s BatchNorm modules (None without BN), read by intercepting one
  shape-only train-mode call; ConfigError if they differ or equal 1 (nothing would update)."""
  found = []

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
      found.append(float(context.module.momentum))
    return next_fun(*args, **kwargs)

  def forward(v, x, e):
    return net.apply(v, x, encoding=e, train=True, mutable=["batch_stats"], rngs=_rngs())

  with nn.intercept_methods(interceptor):
    jax.eval_shape(forward, variables, x, encoding)
  if not found:
    return None
  if len(set(found)) > 1 or found[0] >= 1.0:
    raise ConfigError(
      f"BN recalibration needs one BatchNorm momentum < 1 in the network, got {sorted(set(found))}"
    )
  return found[0]


def _rngs():
  # Train-mode forwards of the calibration may draw dropout masks: fixed, so scores repeat.
  return {"dropout": jax.random.key(0)}


def _reset(stats):
  """Running mean 0, running variance 1 (SPOS tester's reset), other statistics unchanged."""

  def reset(path, leaf):
    name = getattr(path[-1], "key", None)
    return (
      jnp.zeros_like(leaf) if name == "mean" else jnp.ones_like(leaf) if name == "var" else leaf
    )

  return jax.tree_util.tree_map_with_path(reset, stats)


def recalibrated_stats(net, variables, encoding, calib, *, resolution=None, dtype=jnp.float32):
  """The BN statistics of path `encoding` re-estimated on `calib` (uint8 [nb, bs, H, W, 3]):
  reset, then the cumulative average of the nb train-mode batch statistics (SPOS's
  momentum=None). Without BN (or `calib` None) the supernet's statistics come back as they are.
  """
  params = {k: v for k, v in variables.items() if k != "batch_stats"}
  stats = variables.get("batch_stats", {})
  if calib is None or not jax.tree.leaves(stats):
    return stats
  momentum = bn_momentum(net, variables, pipeline.normalize(calib[0], dtype, resolution), encoding)
  if momentum is None:
    return stats

  def update(old, batch):
    images, t = batch
    _, new = net.apply(
      {**params, "batch_stats": old},
      pipeline.normalize(images, dtype, resolution),
      encoding=encoding,
      train=True,
      mutable=["batch_stats"],
      rngs=_rngs(),
    )
    # new = m old + (1 - m) s_t, so old + (new - old) / ((1 - m) t) = old + (s_t - old) / t.
    step = (1.0 - momentum) * (t + 1).astype(jnp.float32)
    mean = jax.tree.map(lambda o, n: o + (n - o) / step, old, new["batch_stats"])
    return jax.lax.stop_gradient(mean), None

  stats, _ = jax.lax.scan(update, _reset(stats), (calib, jnp.arange(calib.shape[0])))
  return stats


def make_scorer(
  net,
  evaluator: Evaluator,
  *,
  resolution: int | None = None,
  dtype=jnp.float32,
  paths_per_chunk: int = 0,
  compiler_options: dict | None = None,
) -> Callable:
  """Jitted `score(variables, encodings [K, L], calib_images, eval_data) -> {name: [K]}`.

  `net` is a space's array build; `variables` its {'params', 'batch_stats'} (one supernet, not
  mapped); `calib_images` uint8 [nb, bs, H, W, 3] training batches for the recalibration (None:
  keep the supernet's running statistics); `eval_data` whatever `evaluator` reads.
  `compiler_options` go to `jax.jit` (e.g. `Population.compiler_options`).
  """

  def score_one(encoding, variables, calib, eval_data):
    stats = recalibrated_stats(net, variables, encoding, calib, resolution=resolution, dtype=dtype)
    path_vars = {**variables, "batch_stats": stats}

    def predict(x):
      return net.apply(path_vars, x, encoding=encoding, train=False)

    return evaluator(predict, eval_data)

  def score(variables, encodings, calib_images, eval_data):
    encodings = jnp.asarray(encodings, jnp.int32)
    one = lambda e: score_one(e, variables, calib_images, eval_data)  # noqa: E731
    k = encodings.shape[0]
    if paths_per_chunk and paths_per_chunk < k:
      return jax.lax.map(one, encodings, batch_size=paths_per_chunk)
    return jax.vmap(one)(encodings)

  return jax.jit(score, compiler_options=compiler_options)


_SCORERS: dict = {}


def score_paths(
  net,
  variables,
  encodings,
  calib_images,
  eval_data,
  evaluator: Evaluator,
  *,
  resolution: int | None = None,
  dtype=jnp.float32,
  paths_per_chunk: int = 0,
) -> dict:
  """`make_scorer(...)(variables, encodings, calib_images, eval_data)`, the compiled scorer
  cached per (net, evaluator, settings): K paths over shared weights in one call."""
  key = (id(net), id(evaluator), resolution, jnp.dtype(dtype).name, paths_per_chunk)
  if key not in _SCORERS:
    scorer = make_scorer(
      net, evaluator, resolution=resolution, dtype=dtype, paths_per_chunk=paths_per_chunk
    )
    _SCORERS[key] = (net, evaluator, scorer)  # the refs keep the ids valid
  return _SCORERS[key][2](variables, encodings, calib_images, eval_data)


def calibration_batches(images, batches: int, batch_size: int, order) -> np.ndarray | None:
  """uint8 [batches, batch_size, H, W, 3]: the training images the BN recalibration forwards,
  `images[order]` with `order` repeated when it is shorter than the budget and wrapped when its
  indices pass the split's size (None when `batches` is 0: keep the supernet's statistics)."""
  if not batches:
    return None
  images = np.asarray(images)
  pick = np.resize(np.asarray(order), batches * batch_size) % images.shape[0]
  return images[pick].reshape(batches, batch_size, *images.shape[1:])


class PathScorer:
  """`scorer(variables, encodings [n, L], eval_data=None) -> float64 [n]`: each path's `metric`
  (the evaluator's, accuracy by default) with the supernet's `variables` after per-path BN
  recalibration on `calib` (SPOS Sec. 3.3), the one scorer of SPOS, PC-NAS and CRNAS.

  `paths_per_call` > 0: the paths go in calls of that many (the last padded by repeating its
  last path), so every call has one compiled shape whatever n is (SPOS's evolution, PC-NAS's
  stages); 0: all n in one call. `paths_per_chunk` bounds memory inside a call (`lax.map` over
  chunks). `eval_data` (whatever the evaluator reads) is fixed here or given per call.
  """

  def __init__(
    self,
    net,
    evaluator: Evaluator,
    *,
    calib=None,
    eval_data=None,
    resolution: int | None = None,
    paths_per_call: int = 0,
    paths_per_chunk: int = 0,
    compiler_options: dict | None = None,
    metric: str = "accuracy",
  ):
    self.calib = None if calib is None else jnp.asarray(calib)
    self.eval_data, self.metric, self.chunk = eval_data, metric, int(paths_per_call)
    self.score = make_scorer(
      net,
      evaluator,
      resolution=resolution,
      paths_per_chunk=int(paths_per_chunk),
      compiler_options=compiler_options,
    )

  def __call__(self, variables, encodings, eval_data=None) -> np.ndarray:
    encs = np.asarray(encodings, np.int32)
    data = self.eval_data if eval_data is None else eval_data
    n = encs.shape[0]
    chunk = self.chunk or n
    padded = np.concatenate([encs, np.repeat(encs[-1:], -n % chunk, 0)])
    out = [
      self.score(variables, jnp.asarray(padded[i : i + chunk]), self.calib, data)
      for i in range(0, padded.shape[0], chunk)
    ]
    return np.concatenate([np.asarray(o[self.metric], np.float64) for o in out])[:n]
