"""Rank-consistency metrics in jnp (jittable): Spearman rho, Kendall tau-b, top-k overlap.

Used to compare a proxy's or a supernet's ranking of architectures with ground truth (e.g. the
NAS-Bench-201 table), as in the EcoNAS and one-shot NAS rank-consistency studies. All functions
take two score vectors of equal length n (higher = better, any sign convention works for the
correlations) and run inside `jit`; NaNs are not supported (they make the result meaningless,
as in scipy without `nan_policy`).

Conventions follow scipy.stats so results can be cross-checked:
- `rankdata` = scipy.stats.rankdata(method='average'): ties get the mean of their ranks (1-based).
- `spearman` = scipy.stats.spearmanr: Pearson correlation of the average ranks.
- `kendall_tau` = scipy.stats.kendalltau (variant 'b'):
    tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2)),
  C/D concordant/discordant pairs, n0 = n(n-1)/2, n1/n2 pairs tied in x/y. Computed from pairwise
  signs, O(n^2) work but O(n * block) memory (rows are mapped in blocks), fine for n up to
  ~20k. A constant input gives NaN, like scipy.
"""

import jax
import jax.numpy as jnp
import numpy as np


def rankdata(x: jax.Array) -> jax.Array:
  """Average ranks (1-based, ties averaged) of a 1-D array, like scipy's method='average'.

  rank(x_i) = #{j: x_j < x_i} + (#{j: x_j == x_i} + 1) / 2, both counts by binary search in the
  sorted array, so this is O(n log n).
  """
  x = jnp.asarray(x)
  s = jnp.sort(x)
  below = jnp.searchsorted(s, x, side="left")
  below_or_equal = jnp.searchsorted(s, x, side="right")
  return (below + below_or_equal + 1).astype(jnp.float32) / 2.0


def _pearson(a: jax.Array, b: jax.Array) -> jax.Array:
  a = a - jnp.mean(a)
  b = b - jnp.mean(b)
  return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))


def spearman(x: jax.Array, y: jax.Array) -> jax.Array:
  """Spearman's rank correlation rho (ties averaged), a float32 scalar in [-1, 1]."""
  return _pearson(rankdata(x), rankdata(y))


def kendall_tau(x: jax.Array, y: jax.Array, block_size: int = 256) -> jax.Array:
  """Kendall's tau-b (tie-corrected), a float32 scalar in [-1, 1].

  Over all ordered pairs (i, j): sum sign(dx) sign(dy) = 2 (C - D) and sum |sign(dx)| =
  2 (n0 - n1), so tau_b = sum(sx sy) / sqrt(sum |sx| * sum |sy|). Integer sums keep the counts
  exact (int32 suffices for n < 46,000).
  """
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.float32)

  def row(xy):
    xi, yi = xy
    sx = jnp.sign(xi - x).astype(jnp.int32)
    sy = jnp.sign(yi - y).astype(jnp.int32)
    return jnp.stack([jnp.sum(sx * sy), jnp.sum(jnp.abs(sx)), jnp.sum(jnp.abs(sy))])

  sums = jnp.sum(jax.lax.map(row, (x, y), batch_size=block_size), axis=0)
  concord, pairs_x, pairs_y = (sums[i].astype(jnp.float32) for i in range(3))
  return concord / jnp.sqrt(pairs_x * pairs_y)


def _top_indices(scores: jax.Array, k: int) -> jax.Array:
  # lax.top_k breaks ties by the lower index, so the selection is deterministic.
  return jax.lax.top_k(jnp.asarray(scores, jnp.float32), k)[1]


def topk_overlap(pred: jax.Array, target: jax.Array, k: int) -> jax.Array:
  """|top-k by pred  ∩  top-k by target| / k (both sets of exactly k indices; `k` static)."""
  n = jnp.shape(pred)[0]
  in_pred = jnp.zeros(n, bool).at[_top_indices(pred, k)].set(True)
  in_target = jnp.zeros(n, bool).at[_top_indices(target, k)].set(True)
  return jnp.sum(in_pred & in_target) / k


def precision_at_k(pred: jax.Array, target: jax.Array, k: int) -> jax.Array:
  """Fraction of the k items ranked highest by `pred` that are truly top-k, ties inclusive.

  An item is truly top-k if its target value is >= the k-th largest target value, so an item
  tied with the true k-th best counts as a hit (unlike `topk_overlap`, which breaks the tie by
  index).
  """
  target = jnp.asarray(target, jnp.float32)
  kth_best = jax.lax.top_k(target, k)[0][-1]
  return jnp.mean(target[_top_indices(pred, k)] >= kth_best)


def rank_metrics(
  scores,
  truth,
  subsets: dict | None = None,
  *,
  key: str = "{stat}_{subset}",
  stats: tuple[str, ...] = ("kendall", "spearman"),
  min_size: int = 0,
  precision: dict | None = None,
) -> dict:
  """Kendall tau-b and Spearman rho of `scores` against `truth` (float32) over named subsets.

  `subsets` maps a name to a boolean mask or index array (None: every entry; default: one
  subset '' of every entry); the result's keys are `key.format(stat=..., subset=...)`. A subset
  with fewer than `min_size` entries, or a non-finite value (a constant score has no ranking),
  gives None: JSON cannot hold NaN. `precision` maps a key to (k, subset): `precision_at_k` of
  that subset's scores."""
  s, t = np.asarray(scores, np.float32), np.asarray(truth, np.float32)
  fns = {"kendall": kendall_tau, "spearman": spearman}
  out = {}
  for name, sel in ({"": None} if subsets is None else subsets).items():
    a, b = (s, t) if sel is None else (s[sel], t[sel])
    for stat in stats:
      v = float(fns[stat](jnp.asarray(a), jnp.asarray(b))) if a.size >= min_size else None
      out[key.format(stat=stat, subset=name)] = v if v is not None and np.isfinite(v) else None
  for name, (k, sel) in (precision or {}).items():
    a, b = (s, t) if sel is None else (s[sel], t[sel])
    v = float(precision_at_k(jnp.asarray(a), jnp.asarray(b), int(k)))
    out[name] = v if np.isfinite(v) else None
  return out
