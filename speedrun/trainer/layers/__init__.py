"""The layers of the 2026-05 recipe's GPT (record 84), one module per idea; `model_2026.py` assembles them."""
