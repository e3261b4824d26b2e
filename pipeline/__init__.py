"""Pipeline stages (``python -m pipeline.<stage>``) and the library code behind them."""
