"""Bundled case packs: the basics pack (general knowledge and skills) and ``probe.basics``."""
