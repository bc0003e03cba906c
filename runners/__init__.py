"""The article's examples as runners: config in, `runners.api.Result` out. See `runners.registry`."""
