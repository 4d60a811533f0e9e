"""The stage engine between training and the runners: one dataset's cached stages and the kinds of system they run.

- :mod:`pipeline.specs` -- what a system is (document, query and dense encoder specs);
- :mod:`pipeline.artifacts` -- each stage's cached artifact and what it is keyed by;
- :mod:`pipeline.systems` -- the system kinds (bm25, sparse, dense, fusion): a run's inputs and how it is made;
- :mod:`pipeline.dataset` -- :class:`~pipeline.dataset.DatasetRun`, the stages of one dataset;
- :mod:`pipeline.settings` -- how the stages are computed, and their wall time;
- :mod:`pipeline.metrics` -- scoring (ir-measures) and sparsity (FLOPS, Doc_Len);
- :mod:`pipeline.plan` -- trained documents resolved to their model, the ``--dry-run`` plan.
"""
