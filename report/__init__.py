"""What a user reads and checks, made from the stored records of ``results/``: the generated documentation pages
(:mod:`report.docs`), the static HTML report (:mod:`report.site`), the released-model pages, and the check that
re-derives every stored number (:mod:`report.check`, ``python -m report.compare --check``). Nothing here measures;
the measuring side is :mod:`eval`."""
