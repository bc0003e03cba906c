"""A GPT-style language model written once (model.py) and used at every size: the published GPT-2 and
GPT-3 architectures (configs.py) built on the meta device and counted (counting.py), and a small
character-level model trained for real on the article's own text (corpus.py)."""
