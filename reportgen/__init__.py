"""reportgen: collect runner results (cached by content hash) and render them into an MkDocs site.

Never imports torch: runners execute in child processes (`python -m runners`).
"""
