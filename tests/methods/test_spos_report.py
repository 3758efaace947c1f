"""The SPOS report's plots say what they show."""

from jaxml.methods.spos.report import ranking_title


def test_ranking_plot_title_says_which_copy_it_shows():
  two = [{"kendall_random": 0.746}, {"kendall_random": -0.166}]
  assert ranking_title(two) == (
    "copy 0 of 2 vs NB201, random cells: Kendall 0.746 (mean over copies 0.290)"
  )
  assert ranking_title(two[:1]) == "supernet vs NB201, random cells: Kendall 0.746"
