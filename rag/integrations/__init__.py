"""Adapters that put the assistant inside other frameworks; each is imported only when used."""
