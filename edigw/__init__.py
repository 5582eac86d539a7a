"""edigw: a file-exchange EDI gateway for the Ecolix ERP."""

__version__ = "0.1.0"
