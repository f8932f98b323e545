"""Claims: release claims (a YAML file) checked against a run with paired statistics.

:mod:`evalsuite.claims.check` holds the format, the evaluation and the verdicts; the seed's claims
ship as ``alimama-flux.yaml`` (package data). ``evalsuite claims RUN_DIR`` (:mod:`evalsuite.cli.claims`)
prints the verdicts and every report shows them under its headline (:mod:`evalsuite.report.report`).
"""
