"""jaxml.nasbench: tabular NAS benchmarks, ground truth as device arrays (the NAS-Bench-201 table).

Not to be confused with the speed scripts in the top-level `benchmarks/` folder.
"""
