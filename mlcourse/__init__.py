"""mlcourse: helpers for the course "Predicting TF binding with CNNs, and interpreting deep models".

Notebooks import this package and call into its modules; see the README for a map.
"""

from mlcourse.config import cache_dir, is_fast, scale, setup
from mlcourse.findings import check

__all__ = ["setup", "scale", "is_fast", "cache_dir", "check"]
__version__ = "0.1.0"
