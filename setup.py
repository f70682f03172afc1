"""casemix: case-mix (DRG / DIP / APG) payment for a provincial medical insurance bureau."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent

setup(
    name="casemix",
    version="0.1.0",
    description="Group, weight and pay province-wide medical insurance claims by case mix (DRG/DIP/APG) "
    "with PySpark, Delta Lake and MLflow.",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir={"": "lib", "casemix_jobs": "jobs"},
    packages=find_packages("lib") + ["casemix_jobs"],
    include_package_data=True,
    install_requires=[
        # delta-spark 4.x pins the pyspark it was built for; pip picks the newest pair that fits.
        "pyspark>=4.0,<5",
        "delta-spark>=4.0,<5",
        "deltalake>=1.1,<2",
        "pandas>=2.2,<3",  # pandas 3 breaks pyspark.pandas / pyspark.testing
        "pyarrow>=15",
        "numpy>=1.26",
        "mlflow>=3.0,<4",
        "pyyaml>=6",
        "pydantic>=2.5,<3",
        "matplotlib>=3.8",  # calibration plots and the settlement report
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "chispa>=0.10",
            "nbclient>=0.10",
            "nbformat>=5.9",
            "ipykernel>=6",
        ],
    },
    entry_points={"console_scripts": ["casemix=casemix.cli:main"]},
)
