"""Fixes of the article's verbatim scripts (runners/article_code/): each module runs one script as printed,
applies the smallest fix and runs the fixed version."""
