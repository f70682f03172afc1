"""casemix: group, weight and pay a province's medical insurance claims by case mix.

Library code is pure: functions of DataFrames and typed parameters. Jobs (``jobs/``) wire them to
configuration, a Spark session, Delta tables and MLflow.
"""
__version__ = "0.1.0"
