"""The ``ovcache`` command."""
