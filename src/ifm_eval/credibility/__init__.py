"""The credibility stages of the DAG: few-cluster, randomization and multiple-testing
inference (:mod:`.inference_stage`), pre-trend tests and their power, the TWFE
decompositions (:mod:`.diagnostics_stage`) and HonestDiD sensitivity
(:mod:`.sensitivity_stage`) of the diagnosed (main) specifications."""
