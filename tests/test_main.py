"""The command line: every config mistake is ONE line on stderr and exit code 2, no traceback.

A few cases run `python -m jaxml.main` for real (all at once, in parallel: each pays the JAX
import); the rest call the same functions in-process: `main._flags_parser` (what `app.run` calls
to parse the command line) and `main.main`, which end in `SystemExit` exactly as the CLI does.
"""

import os
import subprocess
import sys
import textwrap

import jax
import pytest

from jaxml import config_cli, configs
from jaxml import main as jaxml_main
from jaxml.data import locate
from jaxml.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "experiments/baselines/cifar10_resnet20.py"
SMOKE = f"{CONFIG}:smoke"

SUBPROCESS_CASES = {
  # name: (arguments after `python -m jaxml.main`, extra environment)
  "unknown_key": (["--config", SMOKE, "--config.optim.lrr=0.1"], {}),
  "wrong_type": (["--config", SMOKE, "--config.batch_size=abc"], {}),
  "missing_file": (["--config", "experiments/baselines/no_such_file.py"], {}),
  "batch_vs_devices": (
    ["--config", SMOKE, "--config.population.size=1", "--config.batch_size=15"],
    {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
  ),
}


def one_line(stderr: str) -> str:
  """The single error line; fails on a traceback or any other output."""
  assert "Traceback" not in stderr
  lines = [line for line in stderr.splitlines() if line.strip()]
  assert len(lines) == 1, stderr
  assert lines[0].startswith("jaxml: error: ")
  return lines[0]


@pytest.fixture(scope="module")
def subprocess_runs(tmp_path_factory):
  """name -> (exit code, stderr, workdir) of each SUBPROCESS_CASES run, started together."""
  procs = {}
  for name, (args, env) in SUBPROCESS_CASES.items():
    workdir = tmp_path_factory.mktemp("cli") / name
    full_env = {**os.environ, **env, "JAX_PLATFORMS": "cpu"}
    procs[name] = (
      workdir,
      subprocess.Popen(
        [sys.executable, "-m", "jaxml.main", *args, "--workdir", str(workdir)],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
      ),
    )
  out = {}
  for name, (workdir, proc) in procs.items():
    _, err = proc.communicate(timeout=300)
    out[name] = proc.returncode, err, workdir
  return out


@pytest.mark.parametrize(
  "name, expected",
  [
    ("unknown_key", ["config.optim.lrr", "nearest valid key: config.optim.lr"]),
    ("wrong_type", ["--config.batch_size=abc", "'abc'"]),
    ("missing_file", ["config file not found", "no_such_file.py"]),
    ("batch_vs_devices", ["batch_size=15", "2 devices"]),
  ],
)
def test_cli_config_mistake_is_one_line_and_exit_2(subprocess_runs, name, expected):
  code, err, workdir = subprocess_runs[name]
  assert code == 2, err
  line = one_line(err)
  for part in expected:
    assert part in line
  assert not workdir.exists()  # a rejected config writes nothing


def cli(argv: list[str], capsys) -> tuple[int, str]:
  """Runs the CLI in-process up to its exit; returns (exit code, the one stderr line)."""
  argv = ["jaxml.main", *argv]
  capsys.readouterr()
  with pytest.raises(SystemExit) as exit_info:
    rest = jaxml_main._flags_parser(argv)
    jaxml_main.main(rest)
  return exit_info.value.code, one_line(capsys.readouterr().err)


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / "run")


@pytest.mark.parametrize(
  "overrides, expected",
  [
    (["--config.optimm.lr=1"], ["unknown config key: config.optimm.lr", "config.optim.lr"]),
    (["--config.optim.lr=abc"], ["--config.optim.lr=abc", "'abc'"]),
    (["--config.progress=maybe"], ["--config.progress=maybe", "boolean"]),
    (["--config.data.resolution=4"], ["config.data.resolution must be >= 8, got 4"]),
    (["--config.data.sample_ratio=1.5"], ["sample_ratio must be in (0, 1], got 1.5"]),
    (["--config.data.sample_ratio=0"], ["sample_ratio must be in (0, 1], got 0"]),
    (["--config.data.label_noise=1.0"], ["label_noise must be in [0, 1), got 1.0"]),
    (["--config.population.mapping=pmap"], ["population.mapping='pmap'", "auto, vmap, loop"]),
    (["--config.population.size=0"], ["population.size must be >= 1, got 0"]),
    (["--config.model.name=resnet99"], ["Unknown model name 'resnet99'", "resnet20"]),
    (["--config.optim.schedule=linear"], ["optim.schedule='linear'", "cosine"]),
    (["--config.optim.lr=-0.1"], ["optim.lr must be > 0, got -0.1"]),
    (["--config.checkpoint_every_steps=-1"], ["checkpoint_every_steps must be >= 0"]),
    (["--config.eval_every_steps=-5"], ["eval_every_steps must be >= 0"]),
    (["--nosuch_flag=1"], ["Unknown command line flag 'nosuch_flag'"]),
    # Non-finite numbers pass `x > 0` checks and would train on NaNs.
    (["--config.optim.lr=inf"], ["optim.lr must be a finite number, got inf"]),
    (["--config.optim.weight_decay=nan"], ["optim.weight_decay must be a finite number"]),
    (["--config.num_epochs=inf"], ["num_epochs must be a finite number"]),
    (["--config.optim.grad_clip=-1"], ["optim.grad_clip must be >= 0 (0: off), got -1"]),
    # A step schedule without decay points would silently be constant.
    (
      ["--config.optim.schedule=step", "--config.optim.decay_epochs=()"],
      ["optim.schedule='step' needs optim.decay_epochs", "got ()"],
    ),
    (
      ["--config.optim.schedule=step", "--config.optim.decay_epochs=(3.0,1.0)"],
      ["increasing epochs > 0, got (3.0, 1.0)"],
    ),
    (
      ["--config.optim.schedule=step", "--config.optim.decay_factor=-0.1"],
      ["optim.decay_factor must be in (0, 1], got -0.1"],
    ),
    # A mistyped size is refused in seconds, before data loads and compiles.
    (["--config.population.size=1000000000"], ["population.size=1000000000", "GiB"]),
    (["--config.data.resolution=100000"], ["data.resolution=100000 needs", "the devices have"]),
  ],
)
def test_config_mistake_is_one_line_and_exit_2(capsys, workdir, overrides, expected):
  code, line = cli(["--config", SMOKE, *overrides, "--workdir", workdir], capsys)
  assert code == 2
  for part in expected:
    assert part in line
  assert not os.path.exists(workdir)


def test_unknown_config_arg(capsys, workdir):
  code, line = cli(["--config", f"{CONFIG}:nosuch", "--workdir", workdir], capsys)
  assert code == 2 and "unknown config arg 'nosuch'" in line and "smoke" in line


def test_unknown_method(capsys, workdir, tmp_path):
  path = tmp_path / "bad_method.py"
  path.write_text(
    textwrap.dedent("""
    from jaxml import configs

    def get_config():
      return configs.training_config("nosuch", "tiny_cnn")
  """)
  )
  code, line = cli(["--config", str(path), "--workdir", workdir], capsys)
  assert code == 2 and "unknown method 'nosuch'" in line and "train, ohl" in line


def test_broken_config_file(capsys, workdir, tmp_path):
  path = tmp_path / "broken.py"
  path.write_text("def get_config(:\n")
  code, line = cli(["--config", str(path), "--workdir", workdir], capsys)
  assert code == 2 and "broken.py failed to import: SyntaxError" in line


def test_missing_workdir_and_missing_config(capsys):
  code, line = cli(["--config", SMOKE], capsys)
  assert code == 2 and "missing --workdir" in line
  code, line = cli(["--workdir", "/tmp/x"], capsys)
  assert code == 2 and "missing --config" in line


def test_stray_positional_argument(capsys, workdir):
  code, line = cli(["--config", SMOKE, "0.1", "--workdir", workdir], capsys)
  assert code == 2 and "unexpected arguments ['0.1']" in line


def test_overrides_reach_the_config_and_reparse_cleanly():
  """parse_flags parses the argv it is given (not sys.argv), also twice in one process."""
  for lr, extra in ((0.3, ["--config.optim.lr=0.3"]), (0.05, [])):  # 0.05: the smoke default
    config_cli.parse_flags(["jaxml.main", "--config", SMOKE, *extra, "--workdir", "w"])
    assert jaxml_main._CONFIG.value.optim.lr == lr
    assert jaxml_main._WORKDIR.value == "w"


@pytest.mark.parametrize(
  "size, batch, expected",
  [
    (3, 16, "population.size=3 does not fit 2 devices"),
    (1, 15, "must be divisible by the 2 devices"),
  ],
)
def test_population_must_fit_the_devices(monkeypatch, size, batch, expected):
  config = config_cli.load_config_file(SMOKE)
  config.population.size, config.batch_size = size, batch
  monkeypatch.setattr(jax, "device_count", lambda *a: 2)
  with pytest.raises(ConfigError, match=expected):
    jaxml_main.run_experiment(config, "unused")
  # and the same values pass on 2 devices when they fit
  config.population.size, config.batch_size, config.eval_batch_size = 2, 15, 15
  configs.validate_training_config(config)


def test_missing_data_is_exit_3_and_names_every_place_searched(capsys, tmp_path, monkeypatch):
  env = tmp_path / "env"
  env.mkdir()
  monkeypatch.setenv(locate.ENV_VAR, str(env))
  monkeypatch.setattr(locate, "REPO_ROOT", tmp_path / "repo")  # hide the real ../shared/data
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  workdir = tmp_path / "run"
  args = ["--config", SMOKE, "--config.data.use_tfds=False", "--workdir", str(workdir)]
  code, line = cli(args, capsys)
  assert code == 3
  assert "CIFAR-10 not found" in line
  for place in (env, tmp_path / "shared" / "data"):
    assert str(place) in line
  assert not workdir.exists()  # a run that cannot start writes nothing


def test_explicit_data_dir_is_used_or_refused_never_replaced(capsys, tmp_path):
  """config.data.dir naming a folder without CIFAR-10 is refused even though the default search
  (../shared/data here, or $JAXML_DATA_DIR) would find a copy; the workdir stays untouched."""
  empty = tmp_path / "empty"
  empty.mkdir()
  workdir = tmp_path / "run"
  args = ["--config", SMOKE, f"--config.data.dir={empty}", "--workdir", str(workdir)]
  code, line = cli(args, capsys)
  assert code == 3
  assert f"config.data.dir={empty} holds no CIFAR-10" in line
  assert not workdir.exists()


def test_failed_start_leaves_an_existing_workdir_as_it_was(capsys, tmp_path, tiny_cifar_dir):
  """A truncated data file: exit 3, and the workdir (existing, with a file in it) is unchanged."""
  import shutil

  broken = tmp_path / "broken"
  shutil.copytree(tiny_cifar_dir, broken)
  batch = next(broken.rglob("test_batch"))
  batch.write_bytes(batch.read_bytes()[:1000])
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "notes.txt").write_text("mine")
  args = ["--config", SMOKE, f"--config.data.dir={broken}", "--config.data.val_size=20"]
  code, line = cli([*args, "--workdir", str(workdir)], capsys)
  assert code == 3 and "test_batch" in line
  assert sorted(p.name for p in workdir.iterdir()) == ["notes.txt"]


def test_workdir_that_is_a_file_is_a_config_error(capsys, tmp_path):
  path = tmp_path / "a_file"
  path.write_text("x")
  code, line = cli(["--config", SMOKE, "--workdir", str(path)], capsys)
  assert code == 2 and f"--workdir {path} exists and is not a directory" in line
  code, line = cli(["--config", SMOKE, "--workdir", str(path / "run")], capsys)
  assert code == 2 and "its parent" in line and path.read_text() == "x"


def test_help_prints_the_usage_with_every_experiment_and_its_variants(capsys):
  with pytest.raises(SystemExit) as exit_info:
    jaxml_main._flags_parser(["jaxml.main", "--help"])
  assert exit_info.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith("usage: python -m jaxml.main --config")
  assert "--config.<key>=<v>" in out and ", ".join(jaxml_main.METHODS) in out
  for path in sorted((jaxml_main.EXPERIMENTS_DIR).rglob("*.py")):
    rel = str(path.relative_to(jaxml_main.EXPERIMENTS_DIR.parent))
    module = config_cli.load_module(str(path))
    assert f"{rel} [{', '.join(module.VARIANTS) or '-'}]" in out
