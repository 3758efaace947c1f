"""One contract over every trunk-loop controller (`jaxml.trunks.Controller`), as evosax tests
every strategy: init / ask / tell / history / summary have the shapes the loop relies on, `ask`
is pure (a resume inside a trunk asks again), and the state survives a checkpoint round trip
bit for bit (the loop saves it with the population)."""

import json
import types

import jax
import numpy as np
import pytest

from jaxml import checkpoint, config_cli, oneshot, trunks
from jaxml.methods import amlfs, darts, ohl
from jaxml.methods.pcnas.controller import PCNASController
from jaxml.metrics.writers import to_jsonable
from jaxml.search.controller import FixedArchitectures, SearchController
from jaxml.search.pcnas_pool import PartialModelPool
from jaxml.search.regularized_evolution import RegularizedEvolution
from jaxml.spaces import NB201Space
from jaxml.trunks import Action, Controller, TrunkReport

K = 3


def _base():
  return Controller()


def _ohl():
  config = config_cli.load_config_file("experiments/ohl/cifar10_resnet18.py:smoke")
  return ohl.OHLController(config.ohl, K)


def _ohl_factorised():  # with per-copy pairs: the ask draws them through the factorised policy
  config = config_cli.load_config_file("experiments/ohl/cifar10_resnet18.py:smoke")
  config.ohl.update(policy="factorised", pairs_per_copy=3, baseline="rank", reward="neg_loss")
  return ohl.OHLController(config.ohl, K)


def _amlfs():
  config = config_cli.load_config_file("experiments/amlfs/cifar10_noise20.py:smoke")
  return amlfs.AMLFSController(config.amlfs, K)


def _amlfs_antithetic():
  config = config_cli.load_config_file("experiments/amlfs/cifar10_noise20.py:smoke")
  config.amlfs.update(antithetic=True, reward="neg_loss")
  return amlfs.AMLFSController(config.amlfs, K)


def _darts():
  config = config_cli.load_config_file("experiments/darts/nb201_cifar10.py:smoke")
  config.population.size = K
  return darts.DartsController(config, NB201Space(4, 1, 10, 16), None, num_epochs=3, num_alpha=8)


def _search():
  algorithm = RegularizedEvolution(NB201Space(), population_size=6, sample_size=2, num_children=K)
  return SearchController(algorithm, K, num_trunks=3)


def _fixed():
  return FixedArchitectures(np.arange(K * 6, dtype=np.int32).reshape(K, 6) % 5)


def _probe_fixed():
  return oneshot.ProbeController(np.array([3, 1, 0, 2, 4, 3], np.int32), K, "crnas")


def _probe_sampled():
  return oneshot.ProbeController(NB201Space().sample, K, "spos")


def _pcnas():
  # One copy (a single supernet); 7 trunks for 6 one-trunk stages: trunk 1 ends stage 0, so the
  # second tell shrinks the pool, scoring paths with a stand-in for the supernet's accuracy.
  score = lambda variables, paths: np.asarray(paths, np.float32).sum(1) / 24.0
  search = PartialModelPool(NB201Space(), pool_size=2)
  return PCNASController(search, 2, 1, 0, score, num_trunks=7)


CONTROLLERS = {
  "base": _base,
  "ohl": _ohl,
  "ohl_factorised": _ohl_factorised,
  "amlfs": _amlfs,
  "amlfs_antithetic": _amlfs_antithetic,
  "darts": _darts,
  "search": _search,
  "fixed_architectures": _fixed,
  "probe_fixed": _probe_fixed,
  "probe_sampled": _probe_sampled,
  "pcnas": _pcnas,
}


def _report(controller, trunk: int, hparams, k: int) -> TrunkReport:
  """A trunk end as the loop builds it: rewards, all finite, the copies' accumulators and a
  population (a stand-in: the controllers here read it only through `copy_variables`)."""
  rewards = np.linspace(0.2, 0.6, k) + 0.01 * trunk
  aux = controller.aux_init
  aux = {} if aux is None else jax.tree.map(lambda x: np.stack([np.asarray(x)] * k), aux)
  val = {"accuracy": rewards, "loss": 1.0 - rewards}
  pop = types.SimpleNamespace(params={"w": np.zeros((k, 2), np.float32)}, batch_stats={})
  return TrunkReport(trunk, rewards, np.ones(k, bool), val, aux, pop, hparams)


def _equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(la, lb, strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_controller_contract(name, tmp_path):
  controller = CONTROLLERS[name]()
  assert isinstance(controller, Controller) and isinstance(controller.name, str)
  k = 1 if name == "pcnas" else K  # PC-NAS trains one supernet
  key = trunks.controller_key(0)
  state = controller.init(jax.random.fold_in(key, 0))
  rows = {}
  for t in range(2):
    ask_key = jax.random.fold_in(key, t + 1)
    asked, hparams, shared = controller.ask(state, ask_key)
    again = controller.ask(state, ask_key)
    _equal((asked, hparams, shared), again)  # pure: a resume inside the trunk asks again
    for leaf in jax.tree.leaves(hparams):
      assert np.shape(leaf)[0] == k, "per-copy hparams have a leading copy axis"
    state, action, info = controller.tell(asked, _report(controller, t, hparams, k))
    assert isinstance(action, Action)
    json.dumps(to_jsonable(info))  # scalars / lists for the metrics row
    for field, v in controller.history(state).items():
      rows.setdefault(field, []).append(np.asarray(v))

  history = {field: np.stack(v) for field, v in rows.items()}
  json.dumps(to_jsonable(controller.summary(state, history, tmp_path)))

  # The loop checkpoints the state with the population: it must come back bit for bit, and
  # the restored state must ask exactly as the live one.
  with checkpoint.Checkpointer(tmp_path / "ckpt") as ckpt:
    ckpt.save(1, {"controller": state}, {})
    _, restored, _ = ckpt.restore_latest(checkpoint.abstract_tree({"controller": state}))
  _equal(restored["controller"], state)
  ask_key = jax.random.fold_in(key, 9)
  _equal(controller.ask(restored["controller"], ask_key), controller.ask(state, ask_key))
