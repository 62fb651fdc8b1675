"""SpectralEarth-FM: spectral tokenizer -> sensor encoders -> cross-sensor fusion -> hierarchical
encoder -> JEPA objective. Public entry points: :func:`config.preset`, :func:`model.build_encoder`,
:class:`jepa.JEPA`, :func:`checkpoint.save_encoder` / :func:`checkpoint.load_encoder`."""
