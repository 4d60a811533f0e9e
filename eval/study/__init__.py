"""Studies as data: a study file (``recipes/studies/<id>.yaml``) names the conditions it measures, the tables it
produces and the comparisons it makes; one runner (:mod:`eval.study.runner`, ``python -m eval.study <file>``) measures,
tabulates, tests and writes one record of kind ``study`` that ``python -m report.compare --check`` re-derives from the
study file alone (:mod:`eval.study.derive`). The file format is documented in ``docs/studies.md``.
"""
