"""EcoNAS rank-consistency study on NAS-Bench-201 (Zhou et al., CVPR 2020, Sec. 3 and 4).

Do reduced-setting proxies rank architectures as the full setting does? N architectures of the
NAS-Bench-201 space are drawn stratified over the table's CIFAR-10 accuracy (`select_archs`),
then, for each proxy of `proxy_study.proxies` (`jaxml.proxy`, e.g. 'c4r4s0e60n1'), trained from
scratch as ONE population of N copies: copy i is architecture i through the space's array build
(`hparams['model']['encoding']`), at the proxy's C, N, resolution, sample ratio and epochs, by
the trunk loop (`jaxml.trunks.run_trunks`, its checkpoints and resume). A copy's score is its val
accuracy at the end (val = images held out of the train split, never the test set). Scores are
ranked against the table's 200-epoch CIFAR-10 test accuracy (Dong & Yang, ICLR 2020): Spearman
and Kendall tau-b over all N and within the better half by ground truth, and precision@k
(`jaxml.metrics.rank`). The zero-cost proxies (`jaxml.metrics.zero_cost`: synflow, NASWOT,
snip, grad_norm, #params, FLOPs) are scored on the same architectures and land in the same table.

Outputs in the workdir: `proxies/<proxy>/` (each proxy's own run directory, with checkpoints),
`zero_cost.json`, `table.md` (proxy -> cost fraction, Spearman, Kendall, top-half Spearman,
precision@k, wall time), `plots/rank_scatter_<proxy>.png`, `plots/cost_vs_spearman.png` and
`summary.json`. Resumable: a finished proxy (its summary.json) or zero-cost file is read back, an
unfinished proxy continues from its last checkpoint, so a killed study re-run with the same
command does only what is left.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import time

import jax.numpy as jnp
import numpy as np

from jaxml import configs, experiment
from jaxml import proxy as proxy_lib
from jaxml.errors import ConfigError
from jaxml.metrics import rank, zero_cost
from jaxml.metrics.writers import write_json_atomic
from jaxml.nasbench import nb201
from jaxml.spaces import nb201_encoding as enc201
from jaxml.trunks import Keep, run_trunks

VARIANTS = ()  # the method has no variants of its own; experiment files define them


class FixedArchitectures:
  """Trunk-loop controller that gives copy i architecture i for the whole run (EcoNAS's proxy
  study has nothing to decide between trunks)."""

  name = "proxy"
  augment_fn = loss_fn = aux_init = None

  def __init__(self, encodings: np.ndarray):
    self.encodings = np.asarray(encodings, np.int32)

  def init(self, key):
    del key
    return {"encodings": jnp.asarray(self.encodings)}

  def ask(self, state, key):
    del key
    return state, {"model": {"encoding": np.asarray(state["encodings"])}}, {}

  def tell(self, state, report):
    del report
    return state, Keep(), {}

  def history(self, state) -> dict:
    del state
    return {}

  def summary(self, state, history, workdir) -> dict:
    del history, workdir
    return {"encodings": np.asarray(state["encodings"]).tolist()}


def computes_something(enc) -> bool:
  """Whether the cell's output node is reached from its input through non-`none` edges (else the
  network's cells output zeros and it scores chance, ~10 %)."""
  reached = {0}
  for k, (to, frm) in enumerate(enc201.EDGES):  # edges are ordered by target node
    if enc[k] != 0 and frm in reached:
      reached.add(to)
  return 3 in reached


def select_archs(table: nb201.NB201Table, n: int, seed: int, dataset: str = "cifar10"):
  """`n` architectures stratified over the ground-truth accuracy: the cells that compute
  something, sorted by accuracy, cut into n strata of equal count; one per stratum, drawn
  uniformly (seeded), avoiding an isomorphism class already drawn when the stratum allows.

  Returns (encodings int32 [n, 6], accuracies float64 [n]) in stratum order (ascending)."""
  encs = np.asarray(enc201.enumerate_all())
  ok = np.array([computes_something(e) for e in encs])
  idx = np.flatnonzero(ok)
  if not 2 <= n <= idx.size:
    raise ConfigError(f"proxy_study.num_archs must be in [2, {idx.size}], got {n}")
  acc = np.asarray(table.values(dataset), np.float64)
  iso = np.asarray(table.iso_id)
  idx = idx[np.argsort(acc[idx], kind="stable")]
  rng = np.random.default_rng([seed, 10])
  picked, used = [], set()
  for stratum in np.array_split(idx, n):
    order = rng.permutation(stratum)
    fresh = [i for i in order if iso[i] not in used]
    i = int((fresh or list(order))[0])
    picked.append(i)
    used.add(iso[i])
  picked = np.asarray(picked)
  return encs[picked].astype(np.int32), acc[picked]


def rank_metrics(scores, truth, k: int) -> dict:
  """Spearman, Kendall over all, and within the better half by truth; precision@k."""
  s, t = jnp.asarray(scores, jnp.float32), jnp.asarray(truth, jnp.float32)
  top = np.argsort(-np.asarray(truth), kind="stable")[: len(truth) // 2]
  out = {
    "spearman": float(rank.spearman(s, t)),
    "kendall": float(rank.kendall_tau(s, t)),
    "top_half_spearman": float(rank.spearman(s[top], t[top])),
    "top_half_kendall": float(rank.kendall_tau(s[top], t[top])),
    f"precision_at_{k}": float(rank.precision_at_k(s, t, k)),
  }
  # A constant score (e.g. every copy at chance) has no ranking: NaN, which JSON cannot hold.
  return {key: (v if np.isfinite(v) else None) for key, v in out.items()}


# -- config -------------------------------------------------------------------------------------


def validate_config(config) -> None:
  """`ConfigError` for an impossible study before anything is written."""
  configs.validate_training_config(config)
  study = config.proxy_study
  check = configs.check
  check(
    config.model.name == "nb201", f"proxy_study trains 'nb201' models, got {config.model.name!r}"
  )
  check(config.model.arch == "", "proxy_study uses the array build: leave config.model.arch ''")
  check(config.data.val_size > 0, "proxy_study scores copies on the val split: data.val_size > 0")
  proxies = proxy_lib.parse(study.proxies)
  n = study.num_archs
  check(isinstance(n, int) and n >= 2, f"proxy_study.num_archs must be an int >= 2, got {n!r}")
  check(
    config.population.size == n,
    f"population.size ({config.population.size}) must equal proxy_study.num_archs ({n}): one "
    "copy per architecture",
  )
  k = study.precision_k
  check(isinstance(k, int) and 1 <= k <= n, f"proxy_study.precision_k must be in [1, {n}], got {k}")
  check(study.eval_points >= 1, f"proxy_study.eval_points must be >= 1, got {study.eval_points}")
  check(study.dataset in nb201.DATASETS, f"proxy_study.dataset must be one of {nb201.DATASETS}")
  if study.zero_cost:
    check(study.zero_cost_batch >= 2, "proxy_study.zero_cost_batch must be >= 2 (NASWOT's kernel)")
    _zero_cost_net(study.zero_cost_net)
  # A proxy's step count needs the train split's size: known exactly only after loading; the
  # default CIFAR-10 split is checked here (45k after the val hold-out), a custom one in `run`.
  if not config.data.dir:
    for p in proxies:
      p.check_trainable(50_000 - config.data.val_size, config.batch_size)


def _zero_cost_net(name: str) -> proxy_lib.Proxy:
  """'c0r0' (the full NB201 network) or e.g. 'c2r2n1': the size the zero-cost scores use."""
  m = re.fullmatch(r"c(\d+)r(\d+)(n\d+)?", name) if isinstance(name, str) else None
  if m is None:
    raise ConfigError(
      f"proxy_study.zero_cost_net must be c<i>r<j>[n<cells>], e.g. 'c0r0', got {name!r}"
    )
  return proxy_lib.Proxy.from_name(f"c{m.group(1)}r{m.group(2)}s0e1{m.group(3) or ''}")


def proxy_config(config, p: proxy_lib.Proxy):
  """The training config of one proxy: model size, data proxies and epochs from `p`."""
  c = copy.deepcopy(config)
  c.model.update(channels=p.channels, cells_per_stage=p.cells_per_stage, arch="")
  c.data.update(resolution=p.resolution, sample_ratio=p.sample_ratio)
  c.update(num_epochs=float(p.epochs), num_steps=-1)
  return c


# -- the study ----------------------------------------------------------------------------------


def _train_proxy(config, p, encodings, workdir: pathlib.Path) -> dict:
  """Trains the N architectures under proxy `p` as one population (or reads its finished run)."""
  done = workdir / "summary.json"
  if done.exists():
    return json.loads(done.read_text())
  c = proxy_config(config, p)
  controller = FixedArchitectures(encodings)
  run = experiment.PopulationRun(c, str(workdir), controller)
  # The ground truth is the table: the CIFAR-10 test split is never scored (N copies x 10,000
  # images of evaluation would cost about half of a one-epoch proxy's training).
  run.engine.eval_sets.pop("test", None)
  trunk = -(-run.total_steps // config.proxy_study.eval_points)
  every = config.checkpoint_every_steps
  return run_trunks(run, controller, trunk, every)


def _zero_cost(config, encodings, path: pathlib.Path) -> dict:
  """The zero-cost scores of the architectures at the `zero_cost_net` size (or the saved ones)."""
  if path.exists():
    return json.loads(path.read_text())
  study = config.proxy_study
  p = _zero_cost_net(study.zero_cost_net)
  data = experiment.load_datasets(config.data, config.seed)
  rng = np.random.default_rng([config.seed, 11])
  pick = np.sort(rng.permutation(data.train.labels.shape[0])[: study.zero_cost_batch])
  t0 = time.perf_counter()
  scores = zero_cost.nb201_scores(
    p.space(data.num_classes),
    encodings,
    data.train.images[pick],
    data.train.labels[pick],
    seed=config.seed,
  )
  out = {
    "net": f"C {p.channels}, N {p.cells_per_stage}, {p.resolution} px",
    "wall_time_s": time.perf_counter() - t0,
    "scores": {k: v.tolist() for k, v in scores.items()},
  }
  write_json_atomic(path, out)
  return out


def run(config, workdir: str) -> dict:
  validate_config(config)
  study = config.proxy_study
  root = pathlib.Path(workdir)
  table = nb201.load(study.table_dir or None)
  encodings, truth = select_archs(table, study.num_archs, config.seed, study.dataset)
  root.mkdir(parents=True, exist_ok=True)
  write_json_atomic(root / "config.json", config.to_dict())
  k = study.precision_k
  rows = []
  for p in proxy_lib.parse(study.proxies):
    s = _train_proxy(config, p, encodings, root / "proxies" / p.name)
    val = np.asarray(s["val_accuracy_per_copy"], np.float64)
    row = {
      "proxy": p.name,
      "kind": "training",
      "cost_fraction": proxy_lib.cost_fraction(p, encodings, _train_size(config)),
      "wall_time_s": s["wall_time_s"],
      **rank_metrics(val, truth, k),
      "scores": val.tolist(),
    }
    rows.append(row)
  if study.zero_cost:
    zc = _zero_cost(config, encodings, root / "zero_cost.json")
    for name in zero_cost.MEASURES:
      scores = np.asarray(zc["scores"][name], np.float64)
      rows.append(
        {
          "proxy": name,
          "kind": "zero-cost",
          "cost_fraction": 0.0,
          "wall_time_s": zc["wall_time_s"] if name in zero_cost.TRAINING_FREE else 0.0,
          **rank_metrics(scores, truth, k),
          "scores": scores.tolist(),
        }
      )
  write_table(root / "table.md", rows, k)
  plot_study(root / "plots", rows, truth)
  summary = {
    "method": "proxy_study",
    "dataset": study.dataset,
    "num_archs": int(study.num_archs),
    "architectures": [enc201.to_string(e) for e in encodings],
    "ground_truth": truth.tolist(),
    "precision_k": k,
    "zero_cost_net": study.zero_cost_net if study.zero_cost else None,
    "rows": rows,
  }
  write_json_atomic(root / "summary.json", summary)
  return summary


def write_table(path: pathlib.Path, rows: list[dict], k: int) -> None:
  """The study's table in markdown (rows ready for RESULTS.md)."""
  fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
  lines = [
    f"| proxy | kind | cost fraction | Spearman | Kendall | top-half Spearman | P@{k} | wall s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    cost = "0 (no training)" if r["kind"] == "zero-cost" else f"{r['cost_fraction']:.2e}"
    lines.append(
      f"| {r['proxy']} | {r['kind']} | {cost} | {fmt(r['spearman'], '.3f')} | "
      f"{fmt(r['kendall'], '.3f')} | {fmt(r['top_half_spearman'], '.3f')} | "
      f"{fmt(r[f'precision_at_{k}'], '.2f')} | {r['wall_time_s']:.0f} |"
    )
  path.write_text("\n".join(lines) + "\n")


def plot_study(out: pathlib.Path, rows: list[dict], truth: np.ndarray) -> None:
  """rank_scatter_<proxy>.png (proxy rank vs ground-truth rank) for every row and
  cost_vs_spearman.png (training proxies over cost; zero-cost proxies as lines)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  out.mkdir(parents=True, exist_ok=True)
  gt_rank = np.asarray(rank.rankdata(jnp.asarray(truth, jnp.float32)))
  for r in rows:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(gt_rank, np.asarray(rank.rankdata(jnp.asarray(r["scores"], jnp.float32))), s=14)
    rho = "n/a" if r["spearman"] is None else f"{r['spearman']:.3f}"
    ax.set(xlabel="NB201 200-epoch test accuracy rank", ylabel=f"{r['proxy']} rank")
    ax.set_title(f"{r['proxy']}: Spearman {rho}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / f"rank_scatter_{r['proxy']}.png", dpi=100)
    plt.close(fig)
  fig, ax = plt.subplots(figsize=(6, 4))
  train = [r for r in rows if r["kind"] == "training" and r["spearman"] is not None]
  if train:
    ax.scatter([r["cost_fraction"] for r in train], [r["spearman"] for r in train], color="k")
    for r in train:
      ax.annotate(r["proxy"], (r["cost_fraction"], r["spearman"]), fontsize=7)
  for i, r in enumerate(r for r in rows if r["kind"] == "zero-cost" and r["spearman"] is not None):
    ax.axhline(r["spearman"], ls="--", lw=1, color=f"C{i}", label=r["proxy"])
  ax.set_xscale("log")
  ax.set(xlabel="cost (training FLOPs x images) / full NB201 setting", ylabel="Spearman")
  ax.grid(alpha=0.3)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7, title="zero-cost", title_fontsize=7)
  fig.tight_layout()
  fig.savefig(out / "cost_vs_spearman.png", dpi=100)
  plt.close(fig)


def _train_size(config) -> int:
  """Train images before the sample ratio: CIFAR-10's 50,000 less the val hold-out."""
  return 50_000 - config.data.val_size
