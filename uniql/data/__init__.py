"""Text data: the prepared corpora (``texts``) and calibration windows (``calibration``)."""
