"""The ``connectorctl`` command: a thin shell over the library, one module per group."""
