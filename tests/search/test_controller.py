"""An ask/tell search driven from the trunk loop with a tiny trained population as its evaluator
(`jaxml.search.controller.SearchController`): K NAS-Bench-201 cells per trunk, one per copy, their
val accuracies after a trunk of training from scratch are the search's fitness."""

import numpy as np
import pytest

from jaxml import configs, experiment
from jaxml.errors import ConfigError
from jaxml.search.controller import SearchController
from jaxml.search.random_search import RandomSearch
from jaxml.search.regularized_evolution import RegularizedEvolution
from jaxml.spaces import NB201Space
from jaxml.trunks import run_trunks

K, TRUNK, TRUNKS = 2, 2, 3


@pytest.fixture(scope="module")
def searched(tiny_train_config, tmp_path_factory):
  config = tiny_train_config(
    **{
      "population.size": K,
      "population.mapping": "vmap",
      "population.fast_compile": True,
      "num_steps": TRUNK * TRUNKS,
    }
  )
  config.model = configs.default_model_config("nb201")
  config.model.update(channels=2, cells_per_stage=1)
  config.data.resolution = 8
  algorithm = RegularizedEvolution(NB201Space(), population_size=4, sample_size=2, num_children=K)
  controller = SearchController(algorithm, K, TRUNKS)
  workdir = tmp_path_factory.mktemp("search")
  run = experiment.PopulationRun(config, str(workdir), controller)
  return workdir, run_trunks(run, controller, TRUNK).summary


@pytest.mark.slow  # end to end
def test_fitness_is_the_copies_val_accuracy(searched):
  workdir, summary = searched
  assert summary["queries"] == K * TRUNKS
  with np.load(workdir / "trunks.npz") as f:
    encodings, rewards = f["encodings"], f["rewards"]
  assert encodings.shape == (TRUNKS, K, 6) and rewards.shape == (TRUNKS, K)
  # The first trunks evaluate REA's random initial population (4 = 2 trunks x 2 copies).
  assert len({tuple(e) for e in encodings.reshape(-1, 6)[:4]}) == 4
  t, i = np.unravel_index(np.argmax(rewards), rewards.shape)
  assert summary["best_fitness"] == pytest.approx(rewards[t, i])
  assert summary["best_encoding"] == encodings[t, i].tolist()
  assert summary["best_architecture"] == NB201Space().to_string(encodings[t, i])
  assert len(summary["test_accuracy_per_copy"]) == K  # the last trunk's copies, as trained


def test_ask_size_must_match_the_population():
  with pytest.raises(ConfigError, match="asks 3 architectures"):
    SearchController(RandomSearch(NB201Space(), ask_size=3), 2, 4)
