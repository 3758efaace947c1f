"""The shared pieces of `jaxml.oneshot.supernet` and `scoring`: the one path scorer (chunked
calls equal one call, per-call eval data), its calibration images and the probe controller."""

import jax
import numpy as np
import pytest
from test_oneshot import SPACE, _calib, _eval_data, supernet  # noqa: F401

from jaxml import oneshot
from jaxml.population import accepted_cpu_options


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
def test_path_scorer_chunks_equal_one_call(supernet):  # noqa: F811
  net, variables, _ = supernet
  evaluator = oneshot.classification_evaluator(10, None)
  encs = np.asarray([[3, 3, 2, 1, 3, 2], [1, 0, 3, 4, 2, 3], [2, 2, 2, 2, 2, 2]], np.int32)
  kw = dict(calib=_calib(), eval_data=_eval_data(), compiler_options=accepted_cpu_options())
  chunked = oneshot.PathScorer(net, evaluator, paths_per_call=2, **kw)(variables, encs)
  whole = oneshot.PathScorer(net, evaluator, **kw)
  assert chunked.shape == (3,) and chunked.dtype == np.float64
  np.testing.assert_allclose(chunked, whole(variables, encs), rtol=1e-6)
  # eval data given per call replaces the fixed one (CRNAS scores one val batch at a time).
  first = tuple(x[:1] for x in _eval_data())
  np.testing.assert_allclose(
    whole(variables, encs, first),
    oneshot.PathScorer(net, evaluator, **kw | {"eval_data": first})(variables, encs),
  )


def test_calibration_batches_repeat_and_wrap_the_order():
  images = np.arange(5)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
  got = oneshot.calibration_batches(images, 2, 4, np.asarray([4, 0, 3]))
  assert got.shape == (2, 4, 2, 2, 3)
  np.testing.assert_array_equal(got[..., 0, 0, 0].ravel(), [4, 0, 3, 4, 0, 3, 4, 0])
  np.testing.assert_array_equal(
    oneshot.calibration_batches(images, 1, 3, np.asarray([5, 6, 9]))[0, :, 0, 0, 0], [0, 1, 4]
  )
  assert oneshot.calibration_batches(images, 0, 4, np.arange(5)) is None


def test_probe_controller_hands_out_a_fixed_or_a_sampled_path():
  fixed = oneshot.ProbeController(np.asarray([1, 2, 3, 0, 1, 2]), population_size=2)
  state = fixed.init(jax.random.key(0))
  _, hparams, shared = fixed.ask(state, jax.random.key(1))
  assert shared == {} and hparams["model"]["eval_encoding"].tolist() == [[1, 2, 3, 0, 1, 2]] * 2
  sampled = oneshot.ProbeController(oneshot.UniformSampler(SPACE), population_size=3, name="spos")
  _, hparams, _ = sampled.ask(state, jax.random.key(1))
  paths = hparams["model"]["eval_encoding"]
  assert paths.shape == (3, 6) and paths.dtype == np.int32 and sampled.name == "spos"
  assert np.array_equal(paths, np.asarray(SPACE.sample(jax.random.key(1), 3)))
  _, action, info = sampled.tell(state, None)
  assert type(action).__name__ == "Keep" and info == {}
