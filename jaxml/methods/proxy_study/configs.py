"""The configs of `jaxml.methods.proxy_study`: validation of its `config.proxy_study` block (the
experiment files under experiments/econas/ define the block and variants) and the training
config of one proxy."""

import copy
import re

from jaxml import configs
from jaxml import proxy as proxy_lib
from jaxml.errors import ConfigError
from jaxml.metrics import zero_cost
from jaxml.nasbench import nb201

VARIANTS = ()  # the method has no variants of its own; experiment files define them
BUILDS = ("array", "fixed")  # one population of N array-build copies | N fixed-build runs


def validate_config(config) -> None:
  """`ConfigError` for an impossible study before anything is written."""
  configs.validate_training_config(config)
  study = config.proxy_study
  check = configs.check
  check(
    config.model.name == "nb201", f"proxy_study trains 'nb201' models, got {config.model.name!r}"
  )
  check(config.model.arch == "", "proxy_study sets each copy's cell: leave config.model.arch ''")
  check(study.build in BUILDS, f"proxy_study.build={study.build!r}; valid: {', '.join(BUILDS)}")
  check(config.data.val_size > 0, "proxy_study scores copies on the val split: data.val_size > 0")
  check(
    bool(study.proxies) or study.zero_cost,
    "proxy_study has nothing to rank: name training proxies (proxy_study.proxies) or set "
    "proxy_study.zero_cost=True",
  )
  proxies = proxy_lib.parse(study.proxies) if study.proxies else ()
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
    zero_cost_net(study.zero_cost_net)
    check(
      study.zero_cost_build in zero_cost.BUILDS,
      f"proxy_study.zero_cost_build={study.zero_cost_build!r}; valid: "
      f"{', '.join(zero_cost.BUILDS)}",
    )
  # A proxy's step count needs the train split's size: known exactly only after loading; the
  # default CIFAR-10 split is checked here (45k after the val hold-out), a custom one in `run`.
  if not config.data.dir:
    for p in proxies:
      p.check_trainable(50_000 - config.data.val_size, config.batch_size)


def zero_cost_net(name: str) -> proxy_lib.Proxy:
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
