"""The article's examples as runners: config in, `reportgen.api.Result` out (see `runners.registry`).

Only the runner modules live at this level; what they share sits in subpackages: `mnist` (data),
`training` (loop, options, diagrams), `cnn_model` (the §2.5 CNN, its training recipe and deployment
helpers), `kernels` (its C kernels), `article_code` (the article's scripts, verbatim) and
`article_fixes` (running and fixing them).
"""
