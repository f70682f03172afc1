"""Entry points: one module per job. Each runs as ``casemix <job>`` and as ``spark-submit jobs/<job>.py``."""
