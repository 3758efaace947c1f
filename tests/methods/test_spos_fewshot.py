"""Few-shot NAS on the SPOS supernet (`jaxml.methods.spos.fewshot`): the sub-supernets' paths and
probes, routed scoring, the warm start from another run, end to end, and refusals."""

import json
import sys

import jax
import numpy as np
import pytest
from test_spos import NB201_CONFIG, table_dir, tiny  # noqa: F401  (the tiny SPOS fixtures)
from train_fixtures import REPO_ROOT, final_params

from jaxml import main, oneshot
from jaxml.errors import ConfigError
from jaxml.methods import spos
from jaxml.methods.spos import fewshot
from jaxml.spaces import NB201Space

SPACE = NB201Space(2, 1, 10, 8)
SPLIT = {"spos.split_edge": 0, "population.size": 5, "population.same_init": True}


def test_controller_gives_copy_k_op_k_on_the_split_edge():
  controller = fewshot.SplitController(oneshot.UniformSampler(SPACE), 5, 4)
  _, hparams, _ = controller.ask(controller.init(jax.random.key(0)), jax.random.key(1))
  np.testing.assert_array_equal(hparams["model"]["path_data"]["op"], np.arange(5))
  np.testing.assert_array_equal(hparams["model"]["eval_encoding"][:, 4], np.arange(5))


def test_routed_scorer_scores_each_cell_on_its_ops_copy():
  class Pop:  # params / batch_stats whose copy k holds the number k
    params = {"w": np.arange(5.0)}
    batch_stats = {"m": np.arange(5.0)}

  scorer = lambda variables, encs: np.full(len(encs), float(variables["params"]["w"]))  # noqa: E731
  encs = SPACE.sample(jax.random.key(3), 50)
  scores = fewshot.routed_scorer(scorer, Pop, 1)(7, encs)
  np.testing.assert_array_equal(scores, np.asarray(encs)[:, 1])


@pytest.fixture(scope="module")
def source_run(tiny, tmp_path_factory):  # noqa: F811
  workdir = tmp_path_factory.mktemp("spos_source")
  c = tiny(**{"spos.rank_top": 0, "spos.generations": 0})  # ranks 12 random cells
  main.run_experiment(c, str(workdir))
  return workdir


@pytest.fixture(scope="module")
def source_config(tiny, tmp_path_factory):  # noqa: F811
  """A directory with only a SPOS run's config.json: what the refusals read, without the run."""
  workdir = tmp_path_factory.mktemp("spos_config_only")
  (workdir / "config.json").write_text(json.dumps(tiny().to_dict()))  # as jaxml.main writes it
  return workdir


@pytest.mark.slow  # trains the source supernet (~50 s on 2 cores)
def test_warm_start_copies_the_source_supernet_into_every_copy(tiny, source_run, tmp_path):  # noqa: F811
  c = tiny(**SPLIT, **{"spos.init_from": str(source_run), "spos.init_copy": 1})
  space = spos.build_space(c, 10)
  net = oneshot.supernet_net(space, c.spos.affine)
  sampler = oneshot.SplitSampler(oneshot.UniformSampler(space), 0)
  run = oneshot.supernet_run(c, tmp_path, net, sampler, trunk="spos")
  controller = fewshot.SplitController(oneshot.UniformSampler(space), 5, 0)
  _, hparams, _ = controller.ask(controller.init(jax.random.key(0)), jax.random.key(1))
  pop = run.engine.init_population(True, hparams=hparams)
  warm = fewshot.warm_start(str(source_run), 1, space.encoding_length, run.pop.put_copies)(pop)
  run.close()
  source = final_params(source_run)
  for got, want in zip(jax.tree.leaves(warm.params), source, strict=True):
    assert got.shape[0] == 5
    for k in range(5):
      np.testing.assert_array_equal(np.asarray(got[k]), want[1])
  np.testing.assert_array_equal(np.asarray(warm.step), np.asarray(pop.step))  # fresh schedule


@pytest.mark.slow  # an end-to-end run
def test_fewshot_run_scores_one_supernet(tiny, source_run, tmp_path):  # noqa: F811
  c = tiny(**SPLIT, **{"spos.init_from": str(source_run)})
  summary = main.run_experiment(c, str(tmp_path))
  ranking = json.loads((tmp_path / "ranking.json").read_text())
  assert np.asarray(ranking["scores"]).shape == (1, 16)  # one routed supernet, not 5 copies
  assert len(summary["search"]["copies"]) == 1
  assert summary["population_size"] == 5


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({**SPLIT, "spos.split_edge": 6}, "split_edge"),
    ({**SPLIT, "population.size": 2}, "population.size must be 5"),
    ({**SPLIT, "spos.sampling": "flops_bins"}, "uniform"),
    ({"spos.init_from": "/nonexistent/run"}, "no config.json"),
    ({"spos.init_from": "SOURCE", "model.channels": 4}, "model.channels"),
    ({"spos.init_from": "SOURCE", "spos.init_copy": 2}, "init_copy"),
  ],
)
def test_bad_fewshot_configs_are_refused(tiny, source_config, overrides, match, tmp_path):  # noqa: F811
  overrides = {k: str(source_config) if v == "SOURCE" else v for k, v in overrides.items()}
  with pytest.raises(ConfigError, match=match):
    main.run_experiment(tiny(**overrides), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


@pytest.mark.slow  # trains the source supernet (~50 s on 2 cores)
def test_supernet_vs_standalone_tool_scores_as_the_ranking_study(source_run, tmp_path, capsys):
  sys.path.insert(0, str(REPO_ROOT / "tools"))
  import supernet_vs_standalone as tool

  ranking = json.loads((source_run / "ranking.json").read_text())
  cells = ranking["architectures"][:6]
  study = {  # a proxy study's summary: its cells, the table's accuracy, one proxy's scores
    "architectures": cells,
    "ground_truth": ranking["true_accuracy"][:6],
    "rows": [{"proxy": "c2r2s2e10n1", "scores": [0.5, 0.4, 0.3, 0.2, 0.1, 0.05]}],
  }
  (tmp_path / "summary.json").write_text(json.dumps(study))
  scores = tool.supernet_scores(source_run, cells, paths_per_call=4)
  np.testing.assert_array_equal(scores, ranking["scores"][0][:6])  # copy 0, same scorer
  tool.main(["--supernet", str(source_run), "--study", str(tmp_path)])
  out = capsys.readouterr().out
  assert out.count("| `|") == 6 and "all 6 cells: mean val standalone 0.2583" in out
  with pytest.raises(SystemExit, match="c4r4"):
    tool.main(["--supernet", str(source_run), "--study", str(tmp_path), "--proxy", "c4r4s3e1n1"])
