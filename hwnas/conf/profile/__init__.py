"""hwnas-profile's config root (`pkg://hwnas.conf.profile`)."""
